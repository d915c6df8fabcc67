"""Run a long engine job in a child process (multiprocessing, "spawn").

Why a process: training and evaluation run Keras/TensorFlow code that holds the GIL for tens of
milliseconds at a time (tracing, the Python side of ``fit``, checkpoint saving). In a thread of the
GUI process that stalls the GUI thread (bench/bench_gui.py measured 95 ms p99 timer gaps) and the
GUI thread in turn slows training. A child process has its own interpreter and GIL.

The child runs ``target(*args, emit=..., cancel=..., **kwargs)`` — an engine entry point with the
usual ``(config, emit, cancel)`` contract. Messages go back through one ``multiprocessing`` queue:

* ``("event", Event)`` — the engine's events (frozen dataclasses; they pickle). Per-batch progress
  is coalesced here already (the newest snapshot, at most every ``BATCH_INTERVAL_S``);
* ``(outcome, value, details)`` — exactly one, last: an :class:`engine.outcome.Outcome` value, as
  :func:`engine.outcome.run_classified` decided it (the same rule as for the GUI's thread jobs).
  ``details`` is the traceback text for bugs, empty for ConvScopeErrors (which pickle with their hint).

Cancel: the parent sets a ``multiprocessing`` Event; a small thread in the child turns it into the
engine's :class:`~engine.events.CancelToken`, so the job stops at its next check exactly as in a
thread. A child that does not stop can be terminated (:meth:`ProcessJob.terminate`) — a process
may be killed, a thread never.

:class:`ProcessJob` is the parent side, free of Qt: it starts the child and one reader thread that
hands events and the outcome to two callbacks. ``app.jobs`` turns those into its JobHandle signals.
No TensorFlow is imported in the parent by this module.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import pickle
import queue as _queue
import sys
import threading
import time
import traceback
from typing import Any, Callable

from engine.events import BatchProgress, CancelToken, Event
from engine.outcome import Outcome, run_classified

# The GUI draws a couple of per-batch points a second between epochs. More cost training time: on
# two cores every millisecond the window spends redrawing is taken from the job (bench_gui.py).
BATCH_INTERVAL_S = 0.5
READ_INTERVAL_S = 0.05
EXIT_GRACE_S = 10.0  # after its outcome, a child has this long to exit before it is terminated

Target = str | Callable[..., Any]  # "package.module:function" or a module-level function


def _context():
    return multiprocessing.get_context("spawn")


def _resolve(target: Target) -> Callable[..., Any]:
    if callable(target):
        return target
    module_name, _, name = target.partition(":")
    return getattr(importlib.import_module(module_name), name)


# ============================================================================ child side
def _child_streams() -> None:
    """A windowed (PyInstaller) build has no stdout/stderr; libraries that print must not fail."""
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115


class _ChildSink:
    """The ``emit`` the job gets: events to the queue, per-batch progress coalesced."""

    def __init__(self, queue) -> None:
        self._queue = queue
        self._pending: BatchProgress | None = None
        self._last_batch = 0.0
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, BatchProgress):
                now = time.monotonic()
                if now - self._last_batch < BATCH_INTERVAL_S:
                    self._pending = event
                    return
                self._last_batch = now
                self._pending = None
            else:
                self._flush_locked()
            self._put(("event", event))

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if self._pending is not None:
            self._put(("event", self._pending))
            self._pending = None

    def _put(self, message) -> None:
        try:
            self._queue.put(message)
        except Exception:  # noqa: BLE001 - an unpicklable event is dropped, not fatal
            pass


def _picklable_error(error: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(error).__name__}: {error}")


# Training competes with the window for the same cores: a slightly lower priority lets the
# window's event loop get the CPU at once when it needs it, at no cost when the window is idle.
CHILD_NICENESS = 5


def _lower_priority() -> None:
    try:
        os.nice(CHILD_NICENESS)
    except (AttributeError, OSError):  # Windows has no nice(); a refused change is harmless
        pass


def child_main(target: Target, args: tuple, kwargs: dict, queue, cancel_event) -> None:
    """The child process's entry point (module-level so that "spawn" can pickle it)."""
    _child_streams()
    _lower_priority()
    token = CancelToken()
    done = threading.Event()

    def watch_cancel() -> None:
        # blocks without polling (a daemon thread: it does not keep the process alive)
        if cancel_event.wait() and not done.is_set():
            token.cancel()

    threading.Thread(target=watch_cancel, name="cancel-watch", daemon=True).start()
    sink = _ChildSink(queue)
    outcome, value, details = run_classified(
        lambda: _resolve(target)(*args, emit=sink, cancel=token, **kwargs), token)
    if outcome is Outcome.FAILED:
        value = _picklable_error(value)
    message = (outcome.value, value, details)
    done.set()
    sink.flush()
    try:
        queue.put(message)
    except Exception as error:  # noqa: BLE001 - e.g. an unpicklable result
        queue.put((Outcome.FAILED.value, RuntimeError(f"the job's result could not be sent back: {error}"),
                   traceback.format_exc()))
    queue.close()
    queue.join_thread()  # everything is in the pipe before the process exits


def ping(*, emit, cancel) -> dict:
    """A trivial job for self-checks (``convscope --smoke``): proves a child process can start —
    in a PyInstaller bundle that needs ``multiprocessing.freeze_support()`` in the entry point."""
    return {"pid": os.getpid(), "frozen": bool(getattr(sys, "frozen", False))}


def run_in_child(target: Target, *args, timeout_s: float = 120.0, **kwargs) -> Any:
    """Run one job in a child process and wait for it (no events); raise its error, if any."""
    done = threading.Event()
    outcome: list = []

    def on_done(kind: str, value: Any, details: Any) -> None:
        outcome.extend([kind, value])
        done.set()

    job = ProcessJob("child", target, args, kwargs, on_event=lambda event: None, on_done=on_done,
                     cancel_requested=lambda: False)
    job.start()
    if not done.wait(timeout_s):
        job.terminate()
        raise TimeoutError(f"the child process did not answer within {timeout_s:.0f} s")
    kind, value = outcome
    if kind == Outcome.FAILED:
        raise value
    return value


# ============================================================================ parent side
class ProcessJob:
    """One job in a child process, seen from the parent (no Qt).

    ``on_event(event)`` is called for each event and ``on_done(outcome, value, details)`` exactly
    once, both from the reader thread. ``cancel_requested()`` is polled by the reader thread; when it
    turns true the child is asked to stop."""

    def __init__(self, name: str, target: Target, args: tuple = (), kwargs: dict | None = None, *,
                 on_event: Callable[[Event], None], on_done: Callable[[Outcome, Any, Any], None],
                 cancel_requested: Callable[[], bool]) -> None:
        ctx = _context()
        self.name = name
        self._queue = ctx.Queue()
        self._cancel_event = ctx.Event()
        self._on_event = on_event
        self._on_done = on_done
        self._cancel_requested = cancel_requested
        self._terminated = False
        self.started_at = time.monotonic()
        self.first_message_at: float | None = None
        self.process = ctx.Process(target=child_main, name=f"convscope-job:{name}",
                                   args=(target, tuple(args), dict(kwargs or {}), self._queue, self._cancel_event),
                                   daemon=True)
        self.thread = threading.Thread(target=self._read, name=f"job-reader:{name}", daemon=True)

    def start(self) -> None:
        self.process.start()
        self.thread.start()

    def cancel(self) -> None:
        self._cancel_event.set()

    def terminate(self) -> None:
        """The last resort (window close): the child is killed; the outcome becomes "cancelled"."""
        self._terminated = True
        self._cancel_event.set()
        if self.process.is_alive():
            self.process.terminate()

    # ---- reader thread
    def _read(self) -> None:
        outcome: tuple[Outcome, Any, Any] | None = None
        try:
            outcome = self._pump()
        except BaseException as error:  # noqa: BLE001 - the reader must always report an outcome
            outcome = (Outcome.FAILED, error, traceback.format_exc())
        finally:
            if outcome is None:
                outcome = (Outcome.FAILED, RuntimeError(f"the job process of “{self.name}” ended without a result"), "")
            self._on_done(*outcome)
            self._reap()

    def _pump(self) -> tuple[Outcome, Any, Any]:
        while True:
            if self._cancel_requested() and not self._cancel_event.is_set():
                self._cancel_event.set()
            try:
                kind, *rest = self._queue.get(timeout=READ_INTERVAL_S)
            except _queue.Empty:
                if self.process.is_alive():
                    continue
                try:  # the child may have put its last message just before exiting
                    kind, *rest = self._queue.get(timeout=0.5)
                except _queue.Empty:
                    if self._terminated or self._cancel_event.is_set():
                        return (Outcome.CANCELLED, None, "")
                    code = self.process.exitcode
                    return (Outcome.FAILED, RuntimeError(
                        f"the job process of “{self.name}” stopped unexpectedly (exit code {code}); "
                        "see the log for details"), f"exit code {code}")
            if self.first_message_at is None:
                self.first_message_at = time.monotonic()
            if kind == "event":
                self._on_event(rest[0])
                continue
            value, details = rest
            return (Outcome(kind), value, details)

    def _reap(self) -> None:
        self.process.join(EXIT_GRACE_S)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2.0)
        try:
            self._queue.close()
        except Exception:  # noqa: BLE001
            pass
