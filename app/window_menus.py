"""The main window's menus: File (datasets, models, recent items, quit), Run (train, cancel) and
View (one Ctrl+N action per tab). Actions call the window's slots; recent items go through the
context's requests like every other tab-to-tab route."""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QAction, QKeySequence


def _action(window, menu, text: str, shortcut, slot) -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(slot)
    menu.addAction(action)
    return action


def build_menus(window) -> None:
    """Create the menus and set the window's action attributes (``open_dataset_action``, …)."""
    menu = window.menuBar().addMenu("&File")
    window.open_dataset_action = _action(window, menu, "Open &dataset folder…", "Ctrl+O", window.open_dataset)
    window.open_model_action = _action(window, menu, "Open &model (.keras)…", "Ctrl+Shift+O",
                                       window.open_model_file)
    window.open_demo_action = _action(window, menu, "Open the d&emo dataset (pullover vs coat)", None,
                                      window.open_demo_dataset)
    menu.addSeparator()
    window.recent = RecentMenus(window, menu.addMenu("Recent datasets"), menu.addMenu("Recent runs"))
    window.recent_datasets_menu, window.recent_runs_menu = window.recent.datasets, window.recent.runs
    menu.addSeparator()
    _action(window, menu, "&Quit", QKeySequence.StandardKey.Quit, window.close)

    run_menu = window.menuBar().addMenu("&Run")
    window.start_training_action = _action(window, run_menu, "Start &training", "Ctrl+R", window.start_training)
    window.cancel_action = _action(window, run_menu, "&Cancel the current tab's job", Qt.Key.Key_Escape,
                                   window.cancel_current)
    window.cancel_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)

    view = window.menuBar().addMenu("&View")
    window.tab_actions = []
    for index in range(window.tab_widget.count()):
        action = _action(window, view, window.tab_widget.tabText(index), f"Ctrl+{index + 1}" if index < 9 else None,
                         window.switch_to_tab_action)
        action.setData(index)
        window.tab_actions.append(action)


class RecentMenus(QObject):
    """"Recent datasets" and "Recent runs", filled from the settings each time they open."""

    def __init__(self, window, datasets, runs) -> None:
        super().__init__(window)
        self._window = window
        self.datasets, self.runs = datasets, runs
        datasets.aboutToShow.connect(self.fill)
        runs.aboutToShow.connect(self.fill)
        self.fill()

    @Slot()
    def fill(self) -> None:
        settings = self._window.context.settings
        for menu, kind, handler in ((self.datasets, "datasets", self._open_dataset),
                                    (self.runs, "runs", self._open_run)):
            menu.clear()
            items = settings.recent(kind)
            if not items:
                menu.addAction("(none yet)").setEnabled(False)
            for path in items:
                action = menu.addAction(path)
                action.setData(path)
                action.triggered.connect(handler)

    @Slot()
    def _open_dataset(self) -> None:
        action = self.sender()
        tab = self._window.show_tab("Dataset")
        if tab is not None and isinstance(action, QAction):
            tab.open_folder(str(action.data()))

    @Slot()
    def _open_run(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self._window.show_tab("Evaluation")
            self._window.context.open_run.emit(str(action.data()))
