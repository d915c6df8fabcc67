"""The window's tabs: one list of (title, module, class) in display order, and the lazy title → tab map.

Titles are known without importing the tab modules (the window paints before any tab is built);
Ctrl+1..8 follow this order.
"""

from __future__ import annotations

import importlib
from collections.abc import MutableMapping
from typing import NamedTuple

from PySide6.QtWidgets import QWidget


class TabEntry(NamedTuple):
    title: str  # the tab's label; equals the class's ``title``
    module: str
    class_name: str


TABS: tuple[TabEntry, ...] = (
    TabEntry("Dataset", "app.tabs.dataset", "DatasetTab"),
    TabEntry("Training", "app.tabs.training", "TrainingTab"),
    TabEntry("Study", "app.tabs.study", "StudyTab"),
    TabEntry("Evaluation", "app.tabs.evaluation", "EvaluationTab"),
    TabEntry("Activations", "app.tabs.activations", "ActivationsTab"),
    TabEntry("Filters", "app.tabs.filters", "FiltersTab"),
    TabEntry("Grad-CAM", "app.tabs.gradcam", "GradCamTab"),
    TabEntry("Model", "app.tabs.model_graph", "ModelTab"),
)
TAB_TITLES: list[str] = [entry.title for entry in TABS]


def load_tab_class(index: int) -> type:
    entry = TABS[index]
    return getattr(importlib.import_module(entry.module), entry.class_name)


def load_tab_classes() -> list[type]:
    return [load_tab_class(index) for index in range(len(TABS))]


class LazyTabs(MutableMapping):
    """title → tab, building a tab (``window._build_tab(index)``) the first time it is looked up
    (``dict`` semantics otherwise; a test may put its own object under a title)."""

    def __init__(self, window) -> None:
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
