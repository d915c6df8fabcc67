"""The progress bar + time left + Cancel button bound to one job group (tabs and the status bar)."""

from __future__ import annotations

from PySide6.QtCore import Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from app.jobs import JobHandle, JobRunner
from engine.outcome import Outcome

OUTCOME_TEXT = {Outcome.FINISHED: "Done", Outcome.CANCELLED: "Cancelled", Outcome.FAILED: "Failed"}


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min left"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s left"
    return f"{seconds} s left"


class JobProgress(QWidget):
    """A progress bar + ETA + Cancel button bound to one job group (used in tabs and the status bar)."""

    def __init__(self, runner: JobRunner, group: str | None = None, parent: QWidget | None = None,
                 show_cancel: bool = True) -> None:
        super().__init__(parent)
        self._runner = runner
        self._group = group
        self.group = group  # the job group this bar follows (None: any job)
        self._handle: JobHandle | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setMinimumWidth(160)
        self.label = QLabel()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop this job (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setVisible(show_cancel)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.label)
        layout.addWidget(self.cancel_button)
        runner.job_started.connect(self._on_job_started)
        self._set_idle()

    @property
    def handle(self) -> JobHandle | None:
        return self._handle

    @Slot(object)
    def _on_job_started(self, handle: JobHandle) -> None:
        if self._group is not None and handle.group != self._group:
            return
        if self._group is None and handle.background and self._handle is not None:
            return
        self.track(handle)

    def track(self, handle: JobHandle) -> None:
        if self._handle is not None:
            try:
                self._handle.progress.disconnect(self._on_progress)
                self._handle.ended.disconnect(self._on_ended)
            except (RuntimeError, TypeError):
                pass
        self._handle = handle
        handle.progress.connect(self._on_progress)
        handle.ended.connect(self._on_ended)
        self.bar.setRange(0, 0)  # busy until the first progress event
        self.bar.setFormat(handle.name)
        self.label.setText("")
        self.cancel_button.setEnabled(True)
        self.setVisible(True)

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if self._handle is None:
            return
        phase = _short(self._handle.phase)
        if not total:  # a phase without a count yet: busy, and no time left to guess
            self.bar.setRange(0, 0)
            self.bar.setFormat(f"{self._handle.name}: {phase}" if phase else self._handle.name)
            self.label.setText("")
            return
        self.bar.setRange(0, total)
        self.bar.setValue(min(done, total))
        self.bar.setFormat(f"{self._handle.name} — {phase}: %p%" if phase else f"{self._handle.name}: %p%")
        self.label.setText(format_eta(self._handle.eta_seconds()))

    @Slot()
    def _on_ended(self) -> None:
        handle = self._handle
        if handle is None:
            return
        running = [j for j in self._runner.running_jobs() if self._group is None or j.group == self._group]
        if running:
            self.track(running[-1])
            return
        self._set_idle(handle.outcome or "")

    def _set_idle(self, outcome: str = "") -> None:
        self._handle = None
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.bar.setFormat(OUTCOME_TEXT.get(outcome, "Idle"))
        self.label.setText("")
        self.cancel_button.setEnabled(False)

    @Slot()
    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


def _short(text: str, limit: int = 44) -> str:
    """A phase as the bar shows it: one line, a long path cut in the middle."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit // 2 - 1] + "…" + text[-(limit // 2):]
