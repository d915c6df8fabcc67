"""The one job runner: every long task (scan, training, evaluation, activations, filters, CAMs,
loading TensorFlow) runs here, off the GUI thread.

A job is ``fn(emit, cancel) -> result`` — an engine entry point with its config bound. The runner
runs it on a thread of its own (:class:`app.job_handle.ThreadJob`) or — for the long TensorFlow
jobs, training and evaluation — in a child process (:meth:`JobRunner.start_process`,
:mod:`engine.worker`), whose GIL is not the GUI's. Either way the caller gets a
:class:`~app.job_handle.JobHandle` with the same signals. The runner also

* cancels the previous job of the same group when a new one starts (one job per tab);
* routes every error to one place (:meth:`JobRunner.report_error`, :mod:`app.error_report`);
* on window close, cancels everything and waits robustly (:meth:`JobRunner.cancel_all_and_wait`),
  or lets the jobs wind down without waiting (:meth:`JobRunner.cancel_all`).
"""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QMessageBox, QWidget

from app.error_report import describe_error, open_error_box
from app.job_handle import JobFn, JobHandle, ThreadJob
from engine.errors import ConvScopeError

__all__ = ["JobFn", "JobHandle", "JobRunner"]

log = logging.getLogger("convscope.app")


class JobRunner(QObject):
    """Runs jobs off the GUI thread; the single place errors are reported."""

    busy_changed = Signal(bool)
    progress = Signal(str, int, int)  # name, done, total — for the status bar
    job_started = Signal(object)  # JobHandle
    job_ended = Signal(object)  # JobHandle
    error_reported = Signal(str, str, str)  # job name, message, details
    wound_down = Signal()  # after wind_down(): no job runs any more

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._threads: list[threading.Thread] = []
        self._processes: list = []  # engine.worker.ProcessJob
        self._jobs: list[JobHandle] = []
        self.dialog_parent: QWidget | None = None
        self.show_dialogs = True
        self._last_box: QMessageBox | None = None

    # ---- starting and cancelling
    def start(self, name: str, fn: JobFn, group: str | None = None, *, background: bool = False,
              inline_errors: bool = False) -> JobHandle:
        """Run ``fn(emit, cancel)`` on a worker thread. A running job of the same ``group``
        (default: the same ``name``) is cancelled first. A ``background`` job is one the app starts
        on its own (loading TensorFlow): the status bar and Esc leave it alone. With
        ``inline_errors`` the caller shows a ConvScopeError beside its fields: it is only logged
        here (a bug still gets the dialog)."""
        handle = self._new_handle(name, group, background)
        handle.inline_errors = inline_errors
        return self._launch(handle, ThreadJob(handle, fn).thread)

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

    def _new_handle(self, name: str, group: str | None, background: bool = False) -> JobHandle:
        group = group or name
        self.cancel_group(group)
        handle = JobHandle(name, group, self, background)
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

    def wind_down(self, timeout_ms: int = 15_000) -> None:
        """Cancel every job and emit ``wound_down`` once none runs, without blocking the event loop
        (the window is gone meanwhile). A job process still running after ``timeout_ms`` is
        terminated (its last finished epoch is on disk: checkpoints are written atomically)."""
        self.cancel_all()
        self._deadline, self._wind_timeout_ms = QElapsedTimer(), timeout_ms
        self._deadline.start()
        self._wind_timer = QTimer(self)
        self._wind_timer.timeout.connect(self._check_wound_down)
        self._wind_timer.start(50)

    @Slot()
    def _check_wound_down(self) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        if self.busy or self._threads:
            if self._deadline.elapsed() > self._wind_timeout_ms:
                for job in self._processes:
                    if job.process.is_alive():
                        log.warning("terminating the job process of %s", job.name)
                        job.terminate()
            return
        self._wind_timer.stop()
        self.wound_down.emit()

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
        if getattr(handle, "inline_errors", False) and isinstance(error, ConvScopeError):
            describe_error(name, error, details)  # logged; the tab shows it beside the field
            return
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
        message = describe_error(name, error, details)
        self.error_reported.emit(name, message, details)
        if self.show_dialogs:
            self._last_box = open_error_box(self.dialog_parent, name, message, details)
