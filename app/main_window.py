"""The main window only assembles: the tabs, the File menu, the status bar (job progress + ETA +
cancel + TensorFlow state), shortcuts, persisted geometry and last tab, drag-and-drop delegation,
and cancel-and-wait on close. Each tab is its own module with its own view-model."""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QTabWidget, QWidget

from app.context import AppContext
from app.jobs import JobProgress
from app.theme import app_icon

log = logging.getLogger("convscope.app")

# (module, class) in display order. Ctrl+1..7 follow this order.
TAB_REGISTRY: list[tuple[str, str]] = [
    ("app.tabs.dataset", "DatasetTab"),
    ("app.tabs.training", "TrainingTab"),
    ("app.tabs.evaluation", "EvaluationTab"),
    ("app.tabs.activations", "ActivationsTab"),
    ("app.tabs.filters", "FiltersTab"),
    ("app.tabs.gradcam", "GradCamTab"),
    ("app.tabs.model_graph", "ModelTab"),
]

DEFAULT_SIZE = (1280, 800)


def load_tab_classes() -> list[type]:
    classes = []
    for module_name, class_name in TAB_REGISTRY:
        module = importlib.import_module(module_name)
        classes.append(getattr(module, class_name))
    return classes


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
        self.tabs: dict[str, QWidget] = {}
        for index, cls in enumerate(load_tab_classes()):
            tab = cls(context, self.tab_widget)
            title = getattr(cls, "title", cls.__name__)
            self.tabs[title] = tab
            self.tab_widget.addTab(tab, title)
            self.tab_widget.setTabToolTip(index, f"{title} (Ctrl+{index + 1})")
        context.tabs = self.tabs
        self.setCentralWidget(self.tab_widget)
        context.show_tab.connect(self.show_tab)

        self._build_menu()
        self._build_status_bar()
        self._build_shortcuts()
        self._restore_state()
        self.tab_widget.currentChanged.connect(self._on_tab_changed)

    # ---- assembly
    def _build_menu(self) -> None:
        menu = self.menuBar().addMenu("&File")
        self.open_dataset_action = QAction("Open &dataset folder…", self)
        self.open_dataset_action.setShortcut(QKeySequence("Ctrl+O"))
        self.open_dataset_action.triggered.connect(self.open_dataset)
        menu.addAction(self.open_dataset_action)
        self.open_model_action = QAction("Open &model (.keras)…", self)
        self.open_model_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.open_model_action.triggered.connect(self.open_model_file)
        menu.addAction(self.open_model_action)
        menu.addSeparator()
        self.recent_datasets_menu = menu.addMenu("Recent datasets")
        self.recent_runs_menu = menu.addMenu("Recent runs")
        self.recent_datasets_menu.aboutToShow.connect(self._fill_recent_menus)
        self.recent_runs_menu.aboutToShow.connect(self._fill_recent_menus)
        self._fill_recent_menus()
        menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        menu.addAction(quit_action)

        run_menu = self.menuBar().addMenu("&Run")
        self.start_training_action = QAction("Start &training", self)
        self.start_training_action.setShortcut(QKeySequence("Ctrl+R"))
        self.start_training_action.triggered.connect(self.start_training)
        run_menu.addAction(self.start_training_action)
        self.cancel_action = QAction("&Cancel the current tab's job", self)
        self.cancel_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.cancel_action.triggered.connect(self.cancel_current)
        run_menu.addAction(self.cancel_action)

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

    def _build_shortcuts(self) -> None:
        """A View menu with one action per tab (Ctrl+1..7)."""
        view = self.menuBar().addMenu("&View")
        self.tab_actions: list[QAction] = []
        for index in range(self.tab_widget.count()):
            action = QAction(self.tab_widget.tabText(index), self)
            if index < 9:
                action.setShortcut(QKeySequence(f"Ctrl+{index + 1}"))
            action.setData(index)
            action.triggered.connect(self._switch_to_tab_action)
            view.addAction(action)
            self.tab_actions.append(action)

    @Slot()
    def _switch_to_tab_action(self) -> None:
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
        titles = list(self.tabs)
        if last in titles:
            self.tab_widget.setCurrentIndex(titles.index(last))

    def save_state(self) -> None:
        settings = self.context.settings
        settings.set_value("window/geometry", self.saveGeometry())
        settings.set_value("window/tab", self.tab_widget.tabText(self.tab_widget.currentIndex()))
        for tab in self.tabs.values():
            saver = getattr(tab, "save_settings", None)
            if callable(saver):
                saver()
        settings.sync()

    @Slot(int)
    def _on_tab_changed(self, index: int) -> None:
        self.context.settings.set_value("window/tab", self.tab_widget.tabText(index))

    # ---- actions
    @Slot(str)
    def show_tab(self, title: str) -> QWidget | None:
        tab = self.tabs.get(title)
        if tab is not None:
            self.tab_widget.setCurrentWidget(tab)
        return tab

    def tab(self, title: str) -> QWidget | None:
        return self.tabs.get(title)

    @Slot()
    def open_dataset(self) -> None:
        tab = self.show_tab("Dataset")
        if tab is not None:
            tab.choose_folder()

    @Slot()
    def open_model_file(self) -> None:
        start = self.context.settings.value("folders/model", str(Path.home()), str)
        path, _ = QFileDialog.getOpenFileName(self, "Open a Keras model", start, "Keras models (*.keras)")
        if path:
            self.context.settings.set_value("folders/model", os.path.dirname(path))
            self.context.open_model(path)

    @Slot()
    def start_training(self) -> None:
        tab = self.show_tab("Training")
        if tab is not None:
            tab.start()

    @Slot()
    def cancel_current(self) -> None:
        tab = self.tab_widget.currentWidget()
        cancel = getattr(tab, "cancel", None)
        if callable(cancel):
            cancel()
            return
        for job in self.context.runner.running_jobs():
            if job.group != "tensorflow":
                job.cancel()

    def _fill_recent_menus(self) -> None:
        settings = self.context.settings
        for menu, kind, handler in (
            (self.recent_datasets_menu, "datasets", self._open_recent_dataset),
            (self.recent_runs_menu, "runs", self._open_recent_run),
        ):
            menu.clear()
            items = settings.recent(kind)
            if not items:
                empty = menu.addAction("(none yet)")
                empty.setEnabled(False)
            for path in items:
                action = menu.addAction(path)
                action.setData(path)
                action.triggered.connect(handler)

    @Slot()
    def _open_recent_dataset(self) -> None:
        action = self.sender()
        tab = self.show_tab("Dataset")
        if tab is not None and isinstance(action, QAction):
            tab.open_folder(str(action.data()))

    @Slot()
    def _open_recent_run(self) -> None:
        action = self.sender()
        if not isinstance(action, QAction):
            return
        run_dir = str(action.data())
        tab = self.show_tab("Evaluation")
        if tab is not None:
            tab.show_run(run_dir)

    @Slot()
    def _on_tf_ready(self) -> None:
        self.tf_label.setText("TensorFlow ready")

    @Slot(str, str, str)
    def _on_error_reported(self, name: str, message: str, _details: str) -> None:
        self.statusBar().showMessage(f"{name}: {message}", 10_000)

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
        current = self.tab_widget.currentWidget()
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
            if self._load_tf:
                # after the first paint: the window is up before TensorFlow starts loading
                QTimer.singleShot(0, self.context.load_tf)

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self._closing:
            self._closing = True
            self.save_state()
            self.statusBar().showMessage("Stopping running jobs…")
            self.context.runner.show_dialogs = False
            if not self.context.runner.cancel_all_and_wait(15_000):
                log.warning("closing with jobs still running")
        event.accept()
