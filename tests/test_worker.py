"""Engine jobs in a child process: the outcome comes back, and the child yields the CPU to the window."""

from __future__ import annotations

import os
import threading

from engine.events import Status
from engine.worker import CHILD_NICENESS, ProcessJob


def report_niceness(*, emit, cancel):
    emit(Status(f"pid {os.getpid()}"))
    return os.nice(0)


def _run(target) -> tuple[str, object, list]:
    done = threading.Event()
    outcome: list = []
    events: list = []

    def on_done(kind, value, details):
        outcome.extend([kind, value])
        done.set()

    job = ProcessJob("niceness", target, on_event=events.append, on_done=on_done, cancel_requested=lambda: False)
    job.start()
    assert done.wait(120)
    return outcome[0], outcome[1], events


def test_child_runs_the_job_at_a_lower_priority_than_the_window():
    kind, child_niceness, events = _run(f"{__name__}:report_niceness")
    assert kind == "finished"
    assert child_niceness == min(os.nice(0) + CHILD_NICENESS, 19)
    assert [e.message for e in events if isinstance(e, Status)] and events[0].message != f"pid {os.getpid()}"
