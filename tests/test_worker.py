"""Engine jobs in a child process: the outcome comes back, and the child yields the CPU to the window."""

from __future__ import annotations

import os

import pytest

from engine.errors import InvalidSetting
from engine.worker import CHILD_NICENESS, run_in_child


def report_niceness(*, emit, cancel):
    return {"pid": os.getpid(), "niceness": os.nice(0)}


def refuse(*, emit, cancel):
    raise InvalidSetting("epochs must be at least 1", "set --epochs 1 or more")


def test_child_runs_the_job_at_a_lower_priority_than_the_window():
    answer = run_in_child(f"{__name__}:report_niceness")
    assert answer["pid"] != os.getpid()
    assert answer["niceness"] == min(os.nice(0) + CHILD_NICENESS, 19)


def test_a_user_error_in_the_child_comes_back_with_its_hint():
    with pytest.raises(InvalidSetting) as caught:
        run_in_child(f"{__name__}:refuse")
    assert caught.value.hint == "set --epochs 1 or more"
