"""The main window only assembles: the tabs, the File menu, the status bar (job progress + ETA +
cancel + TensorFlow state), shortcuts, persisted geometry and last tab, drag-and-drop delegation,
and cancel-and-wait on close. Each tab is its own module with its own view-model.

For a fast launch only the current tab is built before the first paint; the others are built
one per event-loop turn right after it (or at once when something asks for them:
:meth:`MainWindow.tab`, ``window.tabs[title]``, ``context.show_tab``)."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QTabWidget, QVBoxLayout, QWidget

from app.context import AppContext
from app.widgets.job_progress import JobProgress
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
# The tabs' titles (each class's ``title``), known without importing the tab modules.
TAB_TITLES: list[str] = ["Dataset", "Training", "Evaluation", "Activations", "Filters", "Grad-CAM", "Model"]

DEFAULT_SIZE = (1280, 800)


def load_tab_class(index: int) -> type:
    module_name, class_name = TAB_REGISTRY[index]
    return getattr(importlib.import_module(module_name), class_name)


def load_tab_classes() -> list[type]:
    return [load_tab_class(index) for index in range(len(TAB_REGISTRY))]


class LazyTabs(MutableMapping):
    """title → tab, building a tab the first time it is looked up (``dict`` semantics otherwise;
    a test may put its own object under a title)."""

    def __init__(self, window: MainWindow) -> None:
        self._window = window
        self._built: dict[str, QWidget] = {}
        self._order = list(TAB_TITLES)

    def __getitem__(self, title: str):
        if title not in self._built:
            if title not in self._order:
                raise KeyError(title)
            self._window._build_tab(self._order.index(title))
        return self._built[title]

    def __setitem__(self, title: str, tab) -> None:
        if title not in self._order:
            self._order.append(title)
        self._built[title] = tab

    def __delitem__(self, title: str) -> None:
        del self._built[title]
        self._order.remove(title)

    def __iter__(self):
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, title) -> bool:
        return title in self._order

    def built(self) -> dict[str, QWidget]:
        """The tabs built so far (no building)."""
        return dict(self._built)


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

        self._build_menu()
        self._build_status_bar()
        self._build_shortcuts()
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
        self.context.settings.set_value("window/tab", self.tab_widget.tabText(index))

    # ---- actions
    @Slot(str)
    def show_tab(self, title: str) -> QWidget | None:
        tab = self.tabs.get(title)
        if tab is not None and title in TAB_TITLES:
            self.tab_widget.setCurrentIndex(TAB_TITLES.index(title))
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
        tab = self.current_tab()
        cancel = getattr(tab, "cancel", None)
        if callable(cancel):
            cancel()
            return
        for job in self.context.runner.running_jobs():
            if not job.background:
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
        self.show_tab("Evaluation")
        self.context.open_run.emit(str(action.data()))

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
        if not self._closing:
            self._closing = True
            self.save_state()
            self.statusBar().showMessage("Stopping running jobs…")
            self.context.runner.show_dialogs = False
            if not self.context.runner.cancel_all_and_wait(15_000):
                log.warning("closing with jobs still running")
        event.accept()
