"""The "Loading TensorFlow…" hint that keeps TensorFlow-dependent controls disabled until it is in.

TensorFlow loads in the background after the first paint (``AppContext.load_tf``); every tab that
has controls needing it holds one gate. ``set_busy`` also disables them while the tab's own job runs.
"""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QLabel, QWidget

LOADING_TIP = "Loading TensorFlow…"


class TfGate(QLabel):
    """A hint label; hidden, and its widgets enabled, once ``context.tf_ready`` has fired."""

    TEXT = "Loading TensorFlow… the controls below unlock in a few seconds."

    def __init__(self, context, widgets=(), parent: QWidget | None = None, text: str = TEXT) -> None:
        super().__init__(text, parent)
        self._context = context
        self._widgets: list[QWidget] = []
        self._tooltips: dict[int, str] = {}  # each widget's own tooltip, shown again when ready
        self._busy = False
        self.setStyleSheet("color: palette(mid); font-style: italic;")
        for widget in widgets:
            self._widgets.append(widget)
        context.tf_ready.connect(self._update)
        self._update()

    @property
    def ready(self) -> bool:
        return bool(self._context.tf_is_ready)

    def add(self, widget: QWidget) -> None:
        self._widgets.append(widget)
        self._update()

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update()

    @Slot()
    def _update(self) -> None:
        ready = self.ready
        for widget in self._widgets:
            widget.setEnabled(ready and not self._busy)
            if not ready:
                self._tooltips.setdefault(id(widget), widget.toolTip())
                widget.setToolTip(LOADING_TIP)
            elif id(widget) in self._tooltips:
                widget.setToolTip(self._tooltips.pop(id(widget)))
        if ready:
            self.hide()  # never shown explicitly: a parentless label would become a window
