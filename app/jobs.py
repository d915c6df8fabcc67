"""The one job runner: every long task (scan, training, evaluation, activations, filters, CAMs,
loading TensorFlow) runs here, off the GUI thread.

A job is ``fn(emit, cancel) -> result`` — an engine entry point with its config bound. The runner:

* runs it on a worker thread of its own (a Python thread per job; see :class:`_Worker`), or — for
  the long TensorFlow jobs, training and evaluation — in a child process
  (:meth:`JobRunner.start_process`, :mod:`engine.worker`), whose GIL is not the GUI's;
* turns the engine events the job emits into the :attr:`JobHandle.engine_event` Qt signal, delivered on
  the GUI thread. Events are queued and handed over in batches, at most every ``WAKE_INTERVAL_S``
  for the chatty per-batch progress events (of which only the newest is kept), so a fast training
  loop cannot flood the GUI thread's event queue;
* ends every job in exactly one of ``finished(result)``, ``failed(exception)`` or ``cancelled()``;
* routes every error to one place (:meth:`JobRunner.report_error`): a message box with the
  readable message and a details section with the traceback, also appended to
  ``user_data_dir()/logs/convscope.log``;
* cancels the previous job of the same group when a new one starts (one job per tab);
* on window close, cancels everything and waits robustly (:meth:`JobRunner.cancel_all_and_wait`).

Worker-thread signals are connected only to ``@Slot`` methods of GUI-thread objects (PySide6 runs a
lambda connected to a worker's signal in the worker thread).
"""

from __future__ import annotations

import datetime as _dt
import gc
import logging
import threading
import time
import traceback
from collections import deque
from typing import Any, Callable

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QProgressBar, QPushButton, QWidget

from engine.errors import ConvScopeError
from engine.events import (
    BatchProgress,
    CancelToken,
    EpochEnded,
    Event,
    JobCancelled,
    Progress,
    RunStarted,
    Status,
)

log = logging.getLogger("convscope.app")

WAKE_INTERVAL_S = 0.05
# Jobs started with ``exclusive=True`` run one at a time (a safety valve for work that must not
# overlap other exclusive work); ordinary jobs run side by side.
EXCLUSIVE_LOCK = threading.Lock()  # at most ~20 hand-overs a second for per-batch progress events

JobFn = Callable[[Callable[[Event], None], CancelToken], Any]


class GuiGarbageCollector(QObject):
    """Python's cyclic garbage collection, run only on the GUI thread (calibre's GarbageCollector).

    Automatic collection runs in whichever thread happens to allocate; when that is a job thread
    (a dataset scan's thread pool, TensorFlow's loader) and the cycle holds Qt objects, Qt destroys
    them off the GUI thread and the process crashes. So automatic collection is switched off and a
    timer on the GUI thread collects whenever the allocation counters pass the thresholds — a
    counter check every ``INTERVAL_MS``, a collection only when it is due."""

    INTERVAL_MS = 500

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.collections = 0
        gc.disable()
        self.timer = QTimer(self)
        self.timer.setInterval(self.INTERVAL_MS)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    @Slot()
    def check(self) -> None:
        counts = gc.get_count()
        if counts[0] <= self.threshold[0]:
            return
        generation = 0
        if counts[1] > self.threshold[1]:
            generation = 1
            if counts[2] > self.threshold[2]:
                generation = 2
        gc.collect(generation)
        self.collections += 1

    def stop(self) -> None:
        """Back to Python's automatic collection (tests, shutdown)."""
        self.timer.stop()
        gc.unfreeze()
        gc.enable()


def freeze_long_lived_objects() -> None:
    """Move the objects alive now — after start-up and the TensorFlow import, hundreds of thousands
    of modules, classes and functions that live as long as the process — into the permanent
    generation (``gc.freeze``), so the collector's full collections no longer walk them: with
    TensorFlow imported, one generation-1 collection on the GUI thread took 178 ms during training.
    A young collection first, so that fresh garbage is not frozen with them. Call on the GUI thread."""
    gc.collect(1)
    gc.freeze()


_collector: GuiGarbageCollector | None = None


def install_gui_garbage_collector(app: QObject) -> GuiGarbageCollector:
    """Install the GUI-thread collector once per QApplication (call on the GUI thread)."""
    global _collector  # noqa: PLW0603
    try:
        current = _collector is not None and _collector.parent() is app
    except RuntimeError:  # its QApplication was deleted
        current = False
    if not current:
        _collector = GuiGarbageCollector(app)
    return _collector


def log_file_path():
    from engine.paths import user_data_dir  # noqa: PLC0415

    folder = user_data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "convscope.log"


def append_to_log(text: str) -> None:
    """Append a block to the user's log file; never raises (logging must not cause errors)."""
    try:
        stamp = _dt.datetime.now().isoformat(timespec="seconds")
        with open(log_file_path(), "a", encoding="utf-8") as handle:
            handle.write(f"[{stamp}] {text.rstrip()}\n")
    except OSError:
        pass


class _Bridge(QObject):
    """Signals the worker thread emits; they cross to the GUI thread as queued connections."""

    wake = Signal()
    done = Signal(str, object, object)  # outcome ("finished" | "failed" | "cancelled"), value, traceback text


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

    def __init__(self, name: str, group: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.group = group
        self.token = CancelToken()
        self.outcome: str | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.error_details = ""
        self.started_at = time.monotonic()
        self.progress_started_at: float | None = None
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
        done, total = self.last_progress
        if not total or not done or self.progress_started_at is None:
            return None
        elapsed = time.monotonic() - self.progress_started_at
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
        done_total: tuple[int, int] | None = None
        if isinstance(event, Progress) and event.total:
            done_total = (event.done, event.total)
        elif isinstance(event, RunStarted):
            self._epochs = event.epochs
        elif isinstance(event, BatchProgress) and event.batches:
            self._epoch_batches = event.batches
            epochs = max(self._epochs, event.epoch, 1)
            done_total = ((event.epoch - 1) * event.batches + event.batch, epochs * event.batches)
        elif isinstance(event, EpochEnded) and event.epochs:
            batches = self._epoch_batches or 1
            done_total = (event.epoch * batches, max(event.epochs, event.epoch) * batches)
        if done_total is not None:
            if self.progress_started_at is None or done_total[0] < self.last_progress[0]:
                self.progress_started_at = time.monotonic()
            self.last_progress = done_total
            self.progress.emit(*done_total)

    @Slot(str, object, object)
    def _on_done(self, outcome: str, value: Any, details: Any) -> None:
        self._drain()  # deliver the last events before the outcome
        self.outcome = outcome
        if outcome == "finished":
            self.result = value
            self.finished.emit(value)
        elif outcome == "cancelled":
            self.cancelled.emit()
        else:
            self.error = value
            self.error_details = details or ""
            self.failed.emit(value)
        self.ended.emit()


class _Worker:
    """Runs one job on its own Python thread.

    Not a QThreadPool runnable: with TensorFlow 2.21 imported on a pool thread while the GUI thread
    ran its event loop, later eager/tf.data ops on pool threads segfaulted (5 of 5 runs); the same
    work on Python threads never did (0 of 20)."""

    def __init__(self, handle: JobHandle, fn: JobFn, exclusive: bool = False) -> None:
        self._exclusive = exclusive
        self.thread = threading.Thread(target=self.run, name=f"job:{handle.name}", daemon=True)
        self._handle = handle
        self._bridge = handle._bridge
        self._fn = fn

    def run(self) -> None:  # worker thread
        handle, token = self._handle, self._handle.token
        locked = False
        try:
            if self._exclusive:
                waited = False
                while not EXCLUSIVE_LOCK.acquire(timeout=0.05):
                    if not waited:
                        waited = True
                        handle._emit_from_worker(Status("Waiting for the running job…"))
                    token.raise_if_cancelled()
                locked = True
            token.raise_if_cancelled()
            value = self._fn(handle._emit_from_worker, token)
        except JobCancelled:
            self._bridge.done.emit("cancelled", None, None)
        except BaseException as error:  # noqa: BLE001 - every error goes to the one handler
            if token.cancelled and not isinstance(error, ConvScopeError):
                # errors raised while tearing down a cancelled job are not the user's problem
                self._bridge.done.emit("cancelled", None, None)
            else:
                details = "" if isinstance(error, ConvScopeError) else traceback.format_exc()
                self._bridge.done.emit("failed", error, details)
        else:
            outcome = "cancelled" if token.cancelled and _looks_cancelled(value) else "finished"
            self._bridge.done.emit(outcome, value, None)
        finally:
            if locked:
                EXCLUSIVE_LOCK.release()


def _looks_cancelled(value: Any) -> bool:
    """Engine jobs that stop cleanly on cancel return a result with ``status == "cancelled"``."""
    return getattr(value, "status", None) == "cancelled" or value is None


class JobRunner(QObject):
    """Runs jobs off the GUI thread; the single place errors are reported."""

    busy_changed = Signal(bool)
    progress = Signal(str, int, int)  # name, done, total — for the status bar
    job_started = Signal(object)  # JobHandle
    job_ended = Signal(object)  # JobHandle
    error_reported = Signal(str, str, str)  # job name, message, details

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._threads: list[threading.Thread] = []
        self._processes: list = []  # engine.worker.ProcessJob
        self._jobs: list[JobHandle] = []
        self.dialog_parent: QWidget | None = None
        self.show_dialogs = True
        self._last_box: QMessageBox | None = None

    # ---- starting and cancelling
    def start(self, name: str, fn: JobFn, group: str | None = None, exclusive: bool = False) -> JobHandle:
        """Run ``fn(emit, cancel)`` on a worker thread. A running job of the same ``group``
        (default: the same ``name``) is cancelled first. ``exclusive`` jobs wait for each other."""
        handle = self._new_handle(name, group)
        worker = _Worker(handle, fn, exclusive)
        return self._launch(handle, worker.thread)

    def start_process(self, name: str, target, args: tuple = (), kwargs: dict | None = None,
                      group: str | None = None) -> JobHandle:
        """Run ``target(*args, emit=, cancel=, **kwargs)`` in a child process (:mod:`engine.worker`):
        for the long TensorFlow jobs (training, evaluation) that would hold the GUI process's GIL.
        ``target`` is ``"package.module:function"`` or a module-level function; ``args`` must pickle.
        The handle behaves exactly like a thread job's: the same signals, cancel and errors."""
        from engine.worker import ProcessJob  # noqa: PLC0415 (no TensorFlow)

        handle = self._new_handle(name, group)
        token = handle.token  # the reader thread sees plain Python objects, no Qt wrapper in closures
        job = ProcessJob(name, target, args, kwargs, on_event=handle._emit_from_worker,
                         on_done=handle._bridge.done.emit, cancel_requested=lambda: token.cancelled)
        handle.process_job = job
        self._processes = [p for p in self._processes if p.thread.is_alive()]
        self._processes.append(job)
        return self._launch(handle, job.thread, job.start)

    def _new_handle(self, name: str, group: str | None) -> JobHandle:
        group = group or name
        for job in self._jobs:
            if job.group == group and job.running:
                job.cancel()
        handle = JobHandle(name, group, self)
        handle.progress.connect(self._on_handle_progress)
        handle.failed.connect(self._on_handle_failed)
        handle.ended.connect(self._on_handle_ended)
        return handle

    def _launch(self, handle: JobHandle, thread: threading.Thread, starter=None) -> JobHandle:
        was_busy = self.busy
        self._jobs.append(handle)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        (starter or thread.start)()
        self.job_started.emit(handle)
        if not was_busy:
            self.busy_changed.emit(True)
        return handle

    @property
    def busy(self) -> bool:
        return any(job.running for job in self._jobs)

    def running_jobs(self) -> list[JobHandle]:
        return [job for job in self._jobs if job.running]

    def job_of_group(self, group: str) -> JobHandle | None:
        for job in reversed(self._jobs):
            if job.group == group and job.running:
                return job
        return None

    def cancel_group(self, group: str) -> None:
        for job in self._jobs:
            if job.group == group and job.running:
                job.cancel()

    def cancel_all(self) -> None:
        for job in self._jobs:
            job.cancel()

    def cancel_all_and_wait(self, timeout_ms: int = 10_000, terminate_after_ms: int | None = None) -> bool:
        """Cancel every job and wait until their threads are done, processing events meanwhile so
        queued results are delivered and nothing deadlocks. A job process still running after
        ``terminate_after_ms`` (default: ``timeout_ms`` minus 3 s) is terminated — the last resort;
        threads are never killed. Returns True when all ended in time."""
        self.cancel_all()
        if terminate_after_ms is None:
            terminate_after_ms = max(0, timeout_ms - 3_000)
        terminated = False
        timer = QElapsedTimer()
        timer.start()
        while True:
            self._threads = [t for t in self._threads if t.is_alive()]
            if not self._threads:
                break
            self._threads[0].join(0.02)
            if not terminated and timer.elapsed() > terminate_after_ms:
                terminated = True
                for job in self._processes:
                    if job.process.is_alive():
                        log.warning("terminating the job process of %s", job.name)
                        job.terminate()
            if timer.elapsed() > timeout_ms:
                log.warning("jobs still running after %d ms: %s", timeout_ms,
                            [job.name for job in self.running_jobs()])
                return False
            QCoreApplication.processEvents()
        QCoreApplication.processEvents()  # deliver the queued outcomes
        return True

    def wait_idle(self, timeout_ms: int = 10_000) -> bool:
        """Wait (processing events) until no job runs, without cancelling. For scripts and tests."""
        timer = QElapsedTimer()
        timer.start()
        while self.busy or any(t.is_alive() for t in self._threads):
            if timer.elapsed() > timeout_ms:
                return False
            alive = [t for t in self._threads if t.is_alive()]
            if alive:
                alive[0].join(0.01)
            QCoreApplication.processEvents()
        return True

    # ---- GUI-thread slots
    @Slot(int, int)
    def _on_handle_progress(self, done: int, total: int) -> None:
        handle = self.sender()
        if isinstance(handle, JobHandle):
            self.progress.emit(handle.name, done, total)

    @Slot(object)
    def _on_handle_failed(self, error: object) -> None:
        handle = self.sender()
        details = handle.error_details if isinstance(handle, JobHandle) else ""
        name = handle.name if isinstance(handle, JobHandle) else "job"
        self.report_error(name, error, details)

    @Slot()
    def _on_handle_ended(self) -> None:
        handle = self.sender()
        if isinstance(handle, JobHandle):
            self.job_ended.emit(handle)
            # keep only running jobs and the one that just ended; the others are released from the
            # runner (Qt parent) so their lifetime follows the tabs' references, not the session's
            kept = [j for j in self._jobs if j.running or j is handle]
            for released in self._jobs:
                if released not in kept:
                    released.setParent(None)
            self._jobs = kept
        if not self.busy:
            self.busy_changed.emit(False)

    # ---- errors: the one place
    def report_error(self, name: str, error: object, details: str = "") -> None:
        if isinstance(error, ConvScopeError):
            message = str(error)
            append_to_log(f"{name}: {type(error).__name__}: {message}")
        else:
            message = f"An unexpected error stopped “{name}”: {type(error).__name__}: {error}"
            append_to_log(f"{name}: unexpected error\n{details}")
        log.error("%s: %s", name, message)
        self.error_reported.emit(name, message, details)
        if self.show_dialogs:
            self._show_box(name, message, details)

    def _show_box(self, name: str, message: str, details: str) -> None:
        box = QMessageBox(self.dialog_parent)
        box.setIcon(QMessageBox.Icon.Warning if not details else QMessageBox.Icon.Critical)
        box.setWindowTitle(f"ConvScope — {name}")
        box.setText(message)
        if details:
            box.setInformativeText(f"This is a bug. The details were also written to {log_file_path()}.")
            box.setDetailedText(details)
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._last_box = box
        box.open()  # window-modal, non-blocking: no nested event loop while jobs deliver results


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
        if self._group is None and handle.group == "tensorflow" and self._handle is not None:
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
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(min(done, total))
        self.bar.setFormat(f"{self._handle.name}: %p%")
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
        self.bar.setFormat({"finished": "Done", "cancelled": "Cancelled", "failed": "Failed"}.get(outcome, "Idle"))
        self.label.setText("")
        self.cancel_button.setEnabled(False)

    @Slot()
    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
