"""The one job runner: results, events, cancel, errors to one place, cancel-and-wait."""

from __future__ import annotations

import os
import threading
import time

import pytest

from engine.errors import DatasetError
from engine.events import BatchProgress, Progress, Status

pytestmark = pytest.mark.gui


@pytest.fixture
def runner(context):
    return context.runner


def test_result_and_events_arrive_on_the_gui_thread(runner, qtbot):
    seen = []
    gui_thread = threading.get_ident()

    def job(emit, cancel):
        assert threading.get_ident() != gui_thread
        for i in range(3):
            emit(Progress(done=i + 1, total=3))
        return 42

    handle = runner.start("count", job)
    handle.engine_event.connect(lambda e: seen.append((e, threading.get_ident())))
    with qtbot.waitSignal(handle.finished, timeout=5_000) as blocker:
        pass
    assert blocker.args == [42]
    assert [e.done for e, _ in seen] == [1, 2, 3]
    assert all(tid == gui_thread for _, tid in seen)
    assert not handle.running and handle.outcome == "finished"
    assert handle.last_progress == (3, 3)


def test_ended_jobs_do_not_pile_up_in_the_runner(runner, qtbot):
    # A session of hours runs thousands of jobs; the runner must not keep them all alive.
    from app.jobs import JobHandle

    for i in range(30):
        handle = runner.start(f"job {i}", lambda emit, cancel: None)
        with qtbot.waitSignal(handle.ended, timeout=5_000):
            pass
    assert len(runner.findChildren(JobHandle)) <= 2


def test_ended_jobs_and_their_results_are_freed(runner, qtbot):
    # Nothing but the caller's own reference may keep an ended job's handle (and its result, an
    # activation map or a gallery) alive: a signal named "event" once made PySide keep them all.
    import gc
    import weakref

    import numpy as np

    handles = []
    for i in range(10):
        handle = runner.start(f"job {i}", lambda emit, cancel: np.zeros((64, 64, 3), np.uint8), group="g")
        with qtbot.waitSignal(handle.ended, timeout=5_000):
            pass
        handles.append(weakref.ref(handle))
        del handle
    runner.start("last", lambda emit, cancel: None, group="g")  # the runner keeps only its latest
    qtbot.waitUntil(lambda: not runner.busy, timeout=5_000)
    gc.collect()
    assert sum(ref() is not None for ref in handles) == 0


def test_cancel_ends_in_cancelled(runner, qtbot):
    started = threading.Event()

    def job(emit, cancel):
        started.set()
        while True:
            cancel.raise_if_cancelled()
            time.sleep(0.001)

    handle = runner.start("loop", job)
    assert started.wait(5)
    with qtbot.waitSignal(handle.cancelled, timeout=2_000):
        handle.cancel()
    assert handle.outcome == "cancelled"


def test_same_group_cancels_the_previous_job(runner, qtbot, job_until_cancelled):
    first = runner.start("a", job_until_cancelled, group="tab")
    second = runner.start("b", lambda emit, cancel: "second", group="tab")
    with qtbot.waitSignals([first.ended, second.finished], timeout=5_000):
        pass
    assert first.outcome == "cancelled" and second.outcome == "finished"


def test_user_error_is_reported_once_without_traceback(runner, qtbot, errors, isolated_user_data):
    def job(emit, cancel):
        raise DatasetError("folder 'x' has no class folders", "make one sub-folder per class")

    handle = runner.start("scan", job)
    with qtbot.waitSignal(handle.failed, timeout=5_000):
        pass
    assert errors == [("scan", "folder 'x' has no class folders — make one sub-folder per class", "")]
    log = (isolated_user_data / "logs" / "convscope.log").read_text(encoding="utf-8")
    assert "DatasetError" in log


def test_bug_shows_a_message_box_with_the_traceback(runner, qtbot, monkeypatch, isolated_user_data):
    from PySide6.QtWidgets import QMessageBox

    boxes = []
    monkeypatch.setattr(QMessageBox, "open", lambda self: boxes.append((self.text(), self.detailedText())))
    runner.show_dialogs = True

    def job(emit, cancel):
        return 1 / 0

    handle = runner.start("broken", job)
    with qtbot.waitSignal(handle.failed, timeout=5_000):
        pass
    assert len(boxes) == 1
    text, details = boxes[0]
    assert "ZeroDivisionError" in text and "Traceback" in details and "1 / 0" in details
    assert "ZeroDivisionError" in (isolated_user_data / "logs" / "convscope.log").read_text(encoding="utf-8")
    # the runner is still usable
    again = runner.start("fine", lambda emit, cancel: "ok")
    with qtbot.waitSignal(again.finished, timeout=5_000):
        pass


def test_batch_events_are_coalesced_and_the_last_one_arrives(runner, qtbot):
    delivered = []

    def job(emit, cancel):
        for i in range(20_000):
            emit(BatchProgress(epoch=1, batch=i + 1, batches=20_000, metrics={"loss": 1.0}))
        emit(Status("done"))
        return True

    handle = runner.start("flood", job)
    handle.engine_event.connect(delivered.append)
    with qtbot.waitSignal(handle.finished, timeout=10_000):
        pass
    batches = [e for e in delivered if isinstance(e, BatchProgress)]
    assert len(batches) < 2_000
    assert batches[-1].batch == 20_000
    assert isinstance(delivered[-1], Status)


def test_cancel_all_and_wait_is_robust(runner):
    def job(emit, cancel):
        while not cancel.cancelled:
            time.sleep(0.002)
        time.sleep(0.05)  # a little clean-up after the cancel
        return None

    for i in range(5):
        runner.start(f"job{i}", job)
    assert runner.busy
    t0 = time.monotonic()
    assert runner.cancel_all_and_wait(5_000)
    assert time.monotonic() - t0 < 2.0
    assert not runner.busy


def test_progress_widget_follows_its_group(runner, qtbot):
    from app.widgets.job_progress import JobProgress, format_eta

    widget = JobProgress(runner, "g")
    qtbot.addWidget(widget)
    gate = threading.Event()

    def job(emit, cancel):
        emit(Progress(done=1, total=4))
        gate.wait(5)
        return None

    handle = runner.start("grouped", job, group="g")
    qtbot.waitUntil(lambda: widget.bar.maximum() == 4, timeout=5_000)
    assert widget.cancel_button.isEnabled()
    gate.set()
    with qtbot.waitSignal(handle.ended, timeout=5_000):
        pass
    assert not widget.cancel_button.isEnabled()
    assert format_eta(75) == "1 min 15 s left" and format_eta(None) == ""


# ---- jobs in a child process (engine.worker): module-level targets, so "spawn" can import them
def counting_target(n, emit, cancel):
    for i in range(n):
        emit(Progress(done=i + 1, total=n))
    for i in range(5_000):
        emit(BatchProgress(epoch=1, batch=i + 1, batches=5_000, metrics={"loss": 1.0}))
    return {"pid": os.getpid(), "n": n}


def looping_target(emit, cancel):
    emit(Status("looping"))
    while True:
        cancel.raise_if_cancelled()
        time.sleep(0.005)


def stubborn_target(emit, cancel):
    emit(Status("ignoring cancel"))
    while True:
        time.sleep(0.05)


def failing_target(kind, emit, cancel):
    if kind == "user":
        raise DatasetError("folder 'x' has no class folders", "make one sub-folder per class")
    if kind == "exit":
        os._exit(3)
    return 1 / 0


def test_process_job_result_and_events(runner, qtbot):
    seen = []
    handle = runner.start_process("count", counting_target, (3,))
    handle.engine_event.connect(seen.append)
    with qtbot.waitSignal(handle.finished, timeout=60_000) as blocker:
        pass
    assert blocker.args[0]["n"] == 3 and blocker.args[0]["pid"] != os.getpid()
    assert [e.done for e in seen if isinstance(e, Progress)] == [1, 2, 3]
    batches = [e for e in seen if isinstance(e, BatchProgress)]
    assert len(batches) < 1_000 and batches[-1].batch == 5_000  # coalesced, the newest arrives
    assert handle.outcome == "finished"
    qtbot.waitUntil(lambda: not handle.process_job.process.is_alive(), timeout=20_000)


def test_process_job_cancel(runner, qtbot):
    handle = runner.start_process("loop", looping_target)
    with qtbot.waitSignal(handle.engine_event, timeout=60_000):
        pass
    with qtbot.waitSignal(handle.cancelled, timeout=5_000):
        handle.cancel()
    assert handle.outcome == "cancelled"


def test_process_job_errors_reach_the_one_handler(runner, qtbot, errors):
    user = runner.start_process("scan", failing_target, ("user",))
    bug = runner.start_process("broken", failing_target, ("bug",))
    died = runner.start_process("dies", failing_target, ("exit",))
    with qtbot.waitSignals([user.failed, bug.failed, died.failed], timeout=60_000):
        pass
    by_name = {name: (message, details) for name, message, details in errors}
    assert by_name["scan"] == ("folder 'x' has no class folders — make one sub-folder per class", "")
    assert isinstance(user.error, DatasetError) and user.error.hint == "make one sub-folder per class"
    assert "ZeroDivisionError" in by_name["broken"][0] and "1 / 0" in by_name["broken"][1]
    assert "exit code 3" in by_name["dies"][0]
    again = runner.start_process("fine", counting_target, (1,))
    with qtbot.waitSignal(again.finished, timeout=60_000):
        pass


def test_a_stuck_process_is_terminated_as_the_last_resort(runner, qtbot):
    handle = runner.start_process("stuck", stubborn_target)
    with qtbot.waitSignal(handle.engine_event, timeout=60_000):
        pass
    assert runner.cancel_all_and_wait(timeout_ms=20_000, terminate_after_ms=500)
    assert handle.outcome == "cancelled"
    assert not handle.process_job.process.is_alive()
