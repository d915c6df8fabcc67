"""The main window only assembles: the tabs, the File menu, the status bar (job progress + ETA +
cancel + TensorFlow state), shortcuts, persisted geometry and last tab, drag-and-drop delegation,
and cancel-and-wait on close. Each tab is its own module with its own view-model.

For a fast launch only the current tab is built before the first paint; the others are built
one per event-loop turn right after it (or at once when something asks for them:
:meth:`MainWindow.tab`, ``window.tabs[title]``, ``context.show_tab``)."""

from __future__ import annotations

import logging
import os
import sys

from PySide6.QtCore import QByteArray, QTimer, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from app.context import AppContext
from app.tab_registry import TAB_TITLES, LazyTabs, load_tab_class
from app.widgets.job_progress import JobProgress
from app.theme import app_icon
from app.window_menus import build_menus
from engine.outcome import Outcome

log = logging.getLogger("convscope.app")

DEFAULT_SIZE = (1280, 800)


class MainWindow(QMainWindow):
    first_painted = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None, load_tf: bool = True) -> None:
        super().__init__(parent)
        self.context = context
        self._load_tf = load_tf
        self._painted = False
        self._closing = False
        context.runner.dialog_parent = self
        self.setWindowTitle("ConvScope")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setMinimumSize(900, 600)

        self.tab_widget = QTabWidget()
        self.tab_widget.setDocumentMode(True)
        self.tabs = LazyTabs(self)
        self._pages: list[QWidget] = []  # one container per tab; the tab goes in when built
        for index, title in enumerate(TAB_TITLES):
            page = QWidget()
            layout = QVBoxLayout(page)
            layout.setContentsMargins(0, 0, 0, 0)
            self._pages.append(page)
            self.tab_widget.addTab(page, title)
            self.tab_widget.setTabToolTip(index, f"{title} (Ctrl+{index + 1})")
        self.setCentralWidget(self.tab_widget)
        context.show_tab.connect(self.show_tab)
        context.export_model.connect(self.open_export_dialog)
        self.export_dialog = None

        build_menus(self)
        self._build_status_bar()
        self._restore_state()
        self._build_tab(self.tab_widget.currentIndex())
        self.tab_widget.currentChanged.connect(self._on_tab_changed)

    def _build_tab(self, index: int) -> QWidget:
        title = TAB_TITLES[index]
        built = self.tabs.built()
        if title in built:
            return built[title]
        cls = load_tab_class(index)
        if "pyqtgraph" in sys.modules:  # the tab plots: pyqtgraph's colours before its widgets
            from app.theme import ensure_pyqtgraph_colors  # noqa: PLC0415

            ensure_pyqtgraph_colors()
        page = self._pages[index]
        tab = cls(self.context, page)
        page.layout().addWidget(tab)
        self.tabs[title] = tab
        return tab

    @Slot()
    def _build_next_hidden_tab(self) -> None:
        """Build the tabs not shown yet, one per event-loop turn, after the first paint."""
        if self._closing:
            return
        built = self.tabs.built()
        for index, title in enumerate(TAB_TITLES):
            if title not in built:
                self._build_tab(index)
                QTimer.singleShot(0, self._build_next_hidden_tab)
                return

    def current_tab(self) -> QWidget | None:
        index = self.tab_widget.currentIndex()
        return self._build_tab(index) if 0 <= index < len(TAB_TITLES) else None

    # ---- assembly
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.tf_label = QLabel("Loading TensorFlow…")
        self.tf_label.setToolTip("TensorFlow loads in the background; tools that need it wait for it.")
        self.status_progress = JobProgress(self.context.runner, None, self)
        self.status_progress.setMaximumWidth(460)
        bar.addPermanentWidget(self.status_progress)
        bar.addPermanentWidget(self.tf_label)
        self.context.tf_ready.connect(self._on_tf_ready)
        self.context.runner.error_reported.connect(self._on_error_reported)
        self.context.runner.job_ended.connect(self._on_job_ended)
        self.context.runner.job_started.connect(self._update_status_progress)
        self.context.runner.job_ended.connect(self._update_status_progress)

    @Slot()
    def switch_to_tab_action(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self.tab_widget.setCurrentIndex(int(action.data()))

    # ---- state
    def _restore_state(self) -> None:
        settings = self.context.settings
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(*DEFAULT_SIZE)
        last = settings.value("window/tab", "", str)
        if last in TAB_TITLES:
            self.tab_widget.setCurrentIndex(TAB_TITLES.index(last))

    def save_state(self) -> None:
        settings = self.context.settings
        settings.set_value("window/geometry", self.saveGeometry())
        settings.set_value("window/tab", self.tab_widget.tabText(self.tab_widget.currentIndex()))
        for tab in self.tabs.built().values():
            saver = getattr(tab, "save_settings", None)
            if callable(saver):
                saver()
        settings.sync()

    @Slot(int)
    def _on_tab_changed(self, index: int) -> None:
        if 0 <= index < len(TAB_TITLES):
            self._build_tab(index)
        self._update_status_progress()
        self.context.settings.set_value("window/tab", self.tab_widget.tabText(index))

    # ---- actions
    @Slot(str)
    def show_tab(self, title: str) -> QWidget | None:
        tab = self.tabs.get(title)
        if tab is not None and title in TAB_TITLES:
            self.tab_widget.setCurrentIndex(TAB_TITLES.index(title))
        return tab

    @Slot(str)
    def open_export_dialog(self, model: str):
        from app.dialogs.export import ExportDialog  # noqa: PLC0415

        if self.export_dialog is not None:
            self.export_dialog.close()
        self.export_dialog = ExportDialog(self.context, model, self)
        self.export_dialog.show()
        return self.export_dialog

    def tab(self, title: str) -> QWidget | None:
        return self.tabs.get(title)

    @Slot()
    def open_dataset(self) -> None:
        self.show_tab("Dataset").choose_folder()

    @Slot()
    def open_demo_dataset(self) -> None:
        """The bundled demo images (resources/demo), as a new user's first dataset."""
        from engine.paths import resources_dir  # noqa: PLC0415

        self.show_tab("Dataset").open_folder(str(resources_dir() / "demo" / "pullover-vs-coat"))

    @Slot()
    def open_model_file(self) -> None:
        from engine.paths import default_runs_dir  # noqa: PLC0415

        start = self.context.settings.value("folders/model", "", str) or str(default_runs_dir())
        path, _ = QFileDialog.getOpenFileName(self, "Open a Keras model", start, "Keras models (*.keras)")
        if path:
            self.context.settings.set_value("folders/model", os.path.dirname(path))
            self.context.open_model(path)

    @Slot()
    def start_training(self) -> None:
        self.show_tab("Training").start()

    @Slot()
    def cancel_current(self) -> None:
        tab = self.current_tab()
        cancel = getattr(tab, "cancel", None)
        if callable(cancel):
            cancel()
            return
        for job in self.context.runner.running_jobs():
            if not job.background:
                job.cancel()

    @Slot()
    def _on_tf_ready(self) -> None:
        self.tf_label.setText("TensorFlow ready")

    @Slot(str, str, str)
    def _on_error_reported(self, name: str, message: str, _details: str) -> None:
        self.statusBar().showMessage(f"⚠ {name}: {message}", 10_000)

    @Slot()
    def _update_status_progress(self, *_args) -> None:
        """The status bar's job bar steps aside while the tab in front shows that job's own bar."""
        handle = self.status_progress.handle
        title = self.tab_widget.tabText(self.tab_widget.currentIndex())
        own = getattr(getattr(self.tabs.built().get(title), "progress", None), "group", None)
        self.status_progress.setVisible(own is None or (handle is not None and handle.group != own))

    @Slot(object)
    def _on_job_ended(self, handle) -> None:
        """A later success takes an old error message off the status bar."""
        if handle.outcome == Outcome.FINISHED and not handle.background \
                and self.statusBar().currentMessage().startswith("⚠"):
            self.statusBar().clearMessage()

    # ---- drag and drop: delegated to the tabs
    def _drop_paths(self, event) -> list[str]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if self._drop_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = self._drop_paths(event)
        if not paths:
            return
        self.handle_drop(paths)
        event.acceptProposedAction()

    def handle_drop(self, paths: list[str]) -> bool:
        current = self.current_tab()
        handler = getattr(current, "handle_drop", None)
        if callable(handler) and handler(paths):
            return True
        if len(paths) == 1 and os.path.isdir(paths[0]):
            tab = self.show_tab("Dataset")
            if tab is not None:
                return bool(tab.handle_drop(paths))
        return False

    # ---- life cycle
    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()
            QTimer.singleShot(0, self._build_next_hidden_tab)
            if self._load_tf:
                # after the first paint: the window is up before TensorFlow starts loading
                QTimer.singleShot(0, self.context.load_tf)

    def closeEvent(self, event) -> None:  # noqa: N802
        """Ask first when a job says closing loses something (training); then the window goes at
        once and the jobs wind down behind it (a cancelled training saves last.keras); the
        application ends when they have."""
        runner = self.context.runner
        if self._closing:
            event.accept()
            return
        question = next((job.close_question for job in runner.running_jobs() if job.close_question), "")
        if question and not self.confirm(question):
            event.ignore()
            return
        self._closing = True
        self.save_state()
        runner.show_dialogs = False
        if not runner.busy:
            event.accept()
            return
        event.ignore()
        self.hide()
        runner.wound_down.connect(self.close)
        runner.wind_down()

    def confirm(self, question: str) -> bool:
        """A Yes/No question (Yes is the default), answered before anything happens."""
        answer = QMessageBox.question(self, "Close the window?", question, QMessageBox.StandardButton.Yes
                                      | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
        return answer == QMessageBox.StandardButton.Yes
