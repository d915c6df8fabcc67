"""The base of the inspection tabs (Activations, Filters, Grad-CAM, Model): what they all wire the same.

It holds the TensorFlow gate, the shared model picker, the image picker (for tabs that look at an
image), the status line, image drops and the tab's one job. A tab builds its own widgets, calls
:meth:`InspectionTab.assemble` and :meth:`InspectionTab.follow_shared_model`, and overrides only
what it shows (Orange3's ConcurrentWidgetMixin):

* ``set_model(loaded)`` — the app's current model changed (``context.model_changed``);
* ``image_changed()`` — the user chose another image (picker, drop, ``show_image``);
* ``on_done(result)``, ``on_partial_result(event)``, ``on_progress(done, total)``,
  ``on_exception(error)``, ``on_cancelled()`` — the tab's job, on the GUI thread. Outcomes of a job
  the tab has since replaced are dropped; after the current job's outcome ``done`` is emitted.
"""

from __future__ import annotations

import html
from typing import Any, Callable

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QLabel, QLayout, QVBoxLayout, QWidget

from app.jobs import JobHandle
from app.widgets.model_source import ImagePicker, ModelSourcePicker, dropped_image_path
from app.widgets.tf_gate import TfGate


class InspectionTab(QWidget):
    """Gate + model picker + optional image picker + status line + one job at a time."""

    title = ""
    done = Signal()  # the tab's current job ended (any outcome), or a request was served from cache
    uses_image = True  # False: the tab shows the model alone (no image picker, no drops)

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._loaded = None
        self._handle: JobHandle | None = None
        self._image_path = ""
        self._when_shown = None  # work deferred while the tab is in the background
        self.last_error = ""
        self.model_picker = ModelSourcePicker(context, self)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.gate = TfGate(context, [self.model_picker], self)
        self.image_picker: ImagePicker | None = None
        if self.uses_image:
            self.image_picker = ImagePicker(self, context.settings)
            self.gate.add(self.image_picker)
            self.image_picker.image_selected.connect(self.show_image)
            self.setAcceptDrops(True)
            context.image_chosen.connect(self._offer_image)

    # -- assembly ---------------------------------------------------------------------------------
    def assemble(self, *rows, status: bool = True) -> QVBoxLayout:
        """Lay the tab out: gate, model picker, then ``rows`` (widgets or layouts; a ``(row, stretch)``
        pair stretches), then the status line."""
        layout = QVBoxLayout(self)
        layout.addWidget(self.gate)
        layout.addWidget(self.model_picker)
        for row in rows:
            row, stretch = row if isinstance(row, tuple) else (row, 0)
            if isinstance(row, QLayout):
                layout.addLayout(row, stretch)
            else:
                layout.addWidget(row, stretch)
        if status:
            layout.addWidget(self.status)
        else:
            self.status.hide()
        return layout

    def follow_shared_model(self, layers: bool = True) -> None:
        """Show the app's one current model: ``set_model`` on every change and for the model loaded
        now; with ``layers``, the Model tab's layer choice through ``select_layer``."""
        self.context.model_changed.connect(self.set_model)
        if layers:
            self.context.layer_selected.connect(self.select_layer)
        if self.context.current_model is not None:
            self.set_model(self.context.current_model)

    # -- what a tab overrides -----------------------------------------------------------------------
    @Slot(object)
    def set_model(self, loaded) -> None:
        self._loaded = loaded

    @Slot(str)
    def select_layer(self, path: str) -> bool:
        """Choose layer ``path`` (the Model tab's choice); a tab with a ``layer_combo`` needs no more."""
        combo = getattr(self, "layer_combo", None)
        index = combo.findData(path) if combo is not None else -1
        if index >= 0:
            combo.setCurrentIndex(index)
        return index >= 0

    def relayout_when_resized(self, view, slot) -> None:
        """Call ``slot`` once ``view`` has stopped being resized (re-lay out a grid for the new size)."""
        self._relayout_timer = debounced(self, slot)
        view.resized.connect(self._relayout_timer.start)

    def image_changed(self) -> None:
        """The image is now ``self._image_path``: show what the tab shows for it."""

    def on_done(self, result: Any) -> None:
        """The current job's result."""

    def on_partial_result(self, event) -> None:
        """An engine event of the current job (a PartialResult, a Status…)."""

    def on_progress(self, done: int, total: int) -> None:
        """Progress of the current job."""

    def on_exception(self, error: object) -> None:
        """A setting the user can fix is shown here, in the tab, not in a dialog."""
        self.last_error = str(error)
        self.status.setText(f"<span style='color:#c0392b'>⚠ {html.escape(str(error))}</span>")

    # -- work the user did not ask for waits until the tab is seen ------------------------------------
    def when_shown(self, action: Callable[[], None]) -> None:
        """Run ``action`` now if the user can see this tab, else the next time it is shown: a model
        loaded on another tab must not start work, nor raise errors, in a tab in the background."""
        if self.window().isVisible() and not self.isVisible():
            self._when_shown = action
        else:
            self._when_shown = None
            action()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        action, self._when_shown = self._when_shown, None
        if action is not None:
            action()

    def on_cancelled(self) -> None:
        self.status.setText("Cancelled.")

    # -- images -------------------------------------------------------------------------------------
    @Slot(str)
    def show_image(self, path: str) -> None:
        """Use the image file ``path`` (offered to the other tabs' pickers too)."""
        self._image_path = str(path)
        if self.image_picker is not None:
            self.image_picker.set_path(self._image_path)
        self.context.image_chosen.emit(self._image_path)
        self.image_changed()

    @Slot(str)
    def _offer_image(self, path: str) -> None:
        if path and path != self._image_path:
            self.image_picker.offer(path)

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.uses_image and dropped_image_path(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        path = dropped_image_path(event.mimeData()) if self.uses_image else None
        if path:
            event.acceptProposedAction()
            self.show_image(path)

    # -- the tab's job ------------------------------------------------------------------------------
    def start_job(self, name: str, fn: Callable) -> JobHandle:
        """Run ``fn(emit, cancel)`` in the runner as this tab's job (a running one is cancelled)."""
        handle = self.context.runner.start(name, fn, group=self.title, inline_errors=True)
        handle.engine_event.connect(self._job_event)
        handle.progress.connect(self._job_progress)
        handle.finished.connect(self._job_finished)
        handle.failed.connect(self._job_failed)
        handle.cancelled.connect(self._job_cancelled)
        self._handle = handle
        return handle

    @Slot()
    def cancel(self) -> None:
        if self._handle is not None and self._handle.running:
            self._handle.cancel()

    def _is_current(self) -> bool:
        return self.sender() is self._handle

    @Slot(object)
    def _job_event(self, event) -> None:
        if self._is_current():
            self.on_partial_result(event)

    @Slot(int, int)
    def _job_progress(self, done: int, total: int) -> None:
        if self._is_current():
            self.on_progress(done, total)

    @Slot(object)
    def _job_finished(self, result) -> None:
        if self._is_current():
            self.on_done(result)
            self.done.emit()

    @Slot(object)
    def _job_failed(self, error: object) -> None:
        if self._is_current():
            self.on_exception(error)
            self.done.emit()

    @Slot()
    def _job_cancelled(self) -> None:
        if self._is_current():
            self.on_cancelled()
            self.done.emit()


def debounced(parent, slot, interval_ms: int = 80):
    """A single-shot QTimer that calls ``slot`` once ``interval_ms`` after the last ``start()``
    (for re-laying out a grid while its view is being resized)."""
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(interval_ms)
    timer.timeout.connect(slot)
    return timer
