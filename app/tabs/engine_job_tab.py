"""The base of the tabs that run one engine job at a time in a job group (Training, Study).

It holds the tab's current job and wires it the same way for each: the job's engine events,
result and end go to the tab's ``_on_event`` / ``_on_finished`` / ``_on_ended``, the tab goes busy
while it runs, and Cancel cancels the whole group.
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QWidget

from app.context import AppContext
from app.jobs import JobHandle


class EngineJobTab(QWidget):
    """One engine job at a time in ``group``; subclasses draw its events and set ``_set_busy``."""

    done = Signal()  # the tab's job ended (any outcome)
    group = ""  # the job group the tab's jobs run in (its progress bar and Cancel follow it)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._job: JobHandle | None = None

    def _watch(self, job: JobHandle) -> JobHandle:
        """Make ``job`` the tab's current job: route its events to the tab and go busy."""
        self._job = job
        job.engine_event.connect(self._on_event)
        job.finished.connect(self._on_finished)
        job.ended.connect(self._on_ended)
        self._set_busy(True)
        return job

    @Slot()
    def cancel(self) -> None:
        self.context.runner.cancel_group(self.group)

    def _set_busy(self, busy: bool) -> None:
        raise NotImplementedError

    def _on_event(self, event) -> None:
        raise NotImplementedError

    def _on_finished(self, result) -> None:
        raise NotImplementedError

    def _on_ended(self) -> None:
        raise NotImplementedError
