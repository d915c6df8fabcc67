"""A job seen from the GUI thread (:class:`JobHandle`), and the thread that runs a thread job.

A job's events arrive on the handle's :attr:`JobHandle.engine_event` signal on the GUI thread,
handed over in batches: at most every ``WAKE_INTERVAL_S`` for the chatty per-batch progress events
(of which only the newest is kept), so a fast training loop cannot flood the GUI thread's event
queue. Every job ends in exactly one of ``finished(result)``, ``failed(exception)`` or
``cancelled()``, as :func:`engine.outcome.run_classified` decided — the same rule as in a job process.

Worker-thread signals are connected only to ``@Slot`` methods of GUI-thread objects (PySide6 runs a
lambda connected to a worker's signal in the worker thread).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot

from engine.events import BatchProgress, CancelToken, EpochEnded, Event, Progress, RunStarted, Status
from engine.outcome import Outcome, run_classified

WAKE_INTERVAL_S = 0.05  # at most ~20 hand-overs a second for per-batch progress events
ETA_AFTER_S = 3.0  # no "time left" before a phase has run this long…
ETA_AFTER_FRACTION = 0.02  # …and done this share of its work

JobFn = Callable[[Callable[[Event], None], CancelToken], Any]


class _Bridge(QObject):
    """Signals the worker thread emits; they cross to the GUI thread as queued connections."""

    wake = Signal()
    done = Signal(object, object, object)  # engine.outcome.Outcome, value, traceback text


class JobHandle(QObject):
    """One running (or ended) job, seen from the GUI thread."""

    # Not named "event": a signal of that name shadows QObject.event(), and PySide then kept every
    # handle (and its result) alive forever — ~35 kB per job over a session (bench_soak.py).
    engine_event = Signal(object)
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    ended = Signal()  # after any of the three above
    progress = Signal(int, int)  # done, total (from Progress / BatchProgress events)

    def __init__(self, name: str, group: str, parent: QObject | None = None, background: bool = False) -> None:
        super().__init__(parent)
        self.name = name
        self.group = group
        # a job the app starts on its own (loading TensorFlow): not the user's to watch or cancel
        self.background = background
        self.inline_errors = False  # the caller shows a ConvScopeError itself (JobRunner.start)
        self.close_question = ""  # asked before the window closes while this job runs (training)
        self.token = CancelToken()
        self.outcome: Outcome | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.error_details = ""
        self.started_at = time.monotonic()
        self.progress_started_at: float | None = None
        self.phase = ""  # what the job is doing now, in words
        self._phase_kind: tuple = ()
        self.last_progress: tuple[int, int] = (0, 0)
        self.process_job = None  # engine.worker.ProcessJob for jobs run in a child process
        self._queue: deque[Event] = deque()
        self._lock = threading.Lock()
        self._wake_pending = False
        self._last_wake = 0.0
        self._bridge = _Bridge(self)
        self._bridge.wake.connect(self._drain)
        self._bridge.done.connect(self._on_done)
        self._epoch_batches = 0
        self._epochs = 0

    # ---- public
    @property
    def running(self) -> bool:
        return self.outcome is None

    def cancel(self) -> None:
        self.token.cancel()

    def eta_seconds(self) -> float | None:
        """Time left in the current phase, once it can be estimated: after ``ETA_AFTER_S`` of it and
        ``ETA_AFTER_FRACTION`` done (earlier, "0 s left" at 3 % was a guess from one batch)."""
        done, total = self.last_progress
        if not total or not done or self.progress_started_at is None:
            return None
        elapsed = time.monotonic() - self.progress_started_at
        if elapsed < ETA_AFTER_S or done / total < ETA_AFTER_FRACTION:
            return None
        return max(0.0, elapsed * (total - done) / done)

    # ---- worker side (any thread)
    def _emit_from_worker(self, event: Event) -> None:
        now = time.monotonic()
        with self._lock:
            if isinstance(event, BatchProgress) and self._queue and isinstance(self._queue[-1], BatchProgress):
                self._queue[-1] = event  # only the newest batch snapshot matters
            else:
                self._queue.append(event)
            if self._wake_pending:
                return
            if isinstance(event, BatchProgress) and now - self._last_wake < WAKE_INTERVAL_S:
                return  # a later event (or the end of the job) hands it over
            self._wake_pending = True
            self._last_wake = now
        self._bridge.wake.emit()

    # ---- GUI side
    @Slot()
    def _drain(self) -> None:
        with self._lock:
            events = list(self._queue)
            self._queue.clear()
            self._wake_pending = False
        for event in events:
            self._track_progress(event)
            self.engine_event.emit(event)

    def _track_progress(self, event: Event) -> None:
        """The phase the job is in (scanning, building the base, extracting features, epoch k of n)
        and its progress; (0, 0) while a phase has no count yet (the bar is busy, no time left)."""
        done_total: tuple[int, int] | None = None
        phase, kind = self.phase, self._phase_kind
        if isinstance(event, Progress) and event.total:
            done_total, phase = (event.done, event.total), event.message or phase
            kind = ("count", event.message)
        elif isinstance(event, Status):
            done_total, phase, kind = (0, 0), event.message, ("status", event.message)
        elif isinstance(event, RunStarted):
            self._epochs = event.epochs
            done_total, phase, kind = (0, 0), "starting the first epoch", ("training",)
        elif isinstance(event, BatchProgress) and event.batches:
            self._epoch_batches = event.batches
            epochs = max(self._epochs, event.epoch, 1)
            done_total = ((event.epoch - 1) * event.batches + event.batch, epochs * event.batches)
            phase, kind = f"epoch {event.epoch} of {epochs}", ("training",)
        elif isinstance(event, EpochEnded) and event.epochs:
            batches = self._epoch_batches or 1
            done_total = (event.epoch * batches, max(event.epochs, event.epoch) * batches)
            phase, kind = f"epoch {event.epoch} of {event.epochs} done", ("training",)
        if done_total is None:
            return
        if kind != self._phase_kind or done_total[0] < self.last_progress[0]:
            self.progress_started_at = time.monotonic()  # a new phase: its own clock
        self.phase, self._phase_kind = phase, kind
        self.last_progress = done_total
        self.progress.emit(*done_total)

    @Slot(object, object, object)
    def _on_done(self, outcome: Outcome, value: Any, details: Any) -> None:
        self._drain()  # deliver the last events before the outcome
        self.outcome = Outcome(outcome)
        if outcome == Outcome.FINISHED:
            self.result = value
            self.finished.emit(value)
        elif outcome == Outcome.CANCELLED:
            self.cancelled.emit()
        else:
            self.error = value
            self.error_details = details or ""
            self.failed.emit(value)
        self.ended.emit()


class ThreadJob:
    """Runs one job on its own Python thread.

    Not a QThreadPool runnable: with TensorFlow 2.21 imported on a pool thread while the GUI thread
    ran its event loop, later eager/tf.data ops on pool threads segfaulted (5 of 5 runs); the same
    work on Python threads never did (0 of 20)."""

    def __init__(self, handle: JobHandle, fn: JobFn) -> None:
        self.thread = threading.Thread(target=self.run, name=f"job:{handle.name}", daemon=True)
        self._handle = handle
        self._fn = fn

    def run(self) -> None:  # worker thread
        handle = self._handle
        outcome = run_classified(lambda: self._fn(handle._emit_from_worker, handle.token), handle.token)
        handle._bridge.done.emit(*outcome)
