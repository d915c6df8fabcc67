"""One rule for how a job ended, shared by the GUI's thread jobs and the job process."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine.errors import InvalidSetting
from engine.events import CancelToken, JobCancelled
from engine.outcome import Outcome, run_classified


def _raise(error):
    def call():
        raise error
    return call


@pytest.mark.parametrize(("call", "cancel", "expected"), [
    (lambda: 42, False, Outcome.FINISHED),
    (lambda: None, False, Outcome.FINISHED),  # a job may return nothing
    (_raise(JobCancelled()), False, Outcome.CANCELLED),
    (lambda: SimpleNamespace(status="cancelled"), True, Outcome.CANCELLED),  # stopped cleanly on cancel
    (lambda: SimpleNamespace(status="finished"), True, Outcome.FINISHED),  # finished before it saw cancel
    (_raise(RuntimeError("teardown")), True, Outcome.CANCELLED),  # an error while cancelled is no bug
    (_raise(RuntimeError("bug")), False, Outcome.FAILED),
    (_raise(InvalidSetting("bad epochs", "use 1 or more")), True, Outcome.FAILED),  # the user's to fix
])
def test_run_classified_names_how_a_job_ended(call, cancel, expected):
    token = CancelToken()

    def wrapped():
        if cancel:
            token.cancel()  # the user pressed Cancel while the job ran
        return call()

    outcome, value, details = run_classified(wrapped, token)
    assert outcome is expected and outcome == expected.value
    if expected is Outcome.FAILED:
        assert isinstance(value, Exception)
        # a bug carries its traceback; a ConvScopeError's own message is enough
        assert bool(details) is not isinstance(value, InvalidSetting)


def test_a_job_cancelled_before_it_starts_never_runs():
    token = CancelToken()
    token.cancel()
    ran = []
    assert run_classified(lambda: ran.append(1), token)[0] is Outcome.CANCELLED
    assert ran == []
