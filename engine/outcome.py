"""How a job ended — finished, failed or cancelled — decided in one place for thread and process jobs.

The GUI's thread jobs (``app.job_handle``) and the child process of ``engine.worker`` both run an
engine entry point through :func:`run_classified`, so "a cancelled job that raised while tearing
down is cancelled, not a bug" and "a job that stopped cleanly on cancel returned ``status ==
'cancelled'``" are one rule, not two copies that drift apart.
"""

from __future__ import annotations

import traceback
from enum import Enum
from typing import Any, Callable

from engine.errors import ConvScopeError
from engine.events import CancelToken, JobCancelled


class Outcome(str, Enum):
    """The end of a job. A ``str`` enum: it compares equal to (and pickles as) its plain value."""

    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


def run_classified(call: Callable[[], Any], token: CancelToken) -> tuple[Outcome, Any, str]:
    """Run ``call()`` and say how it ended: ``(outcome, value, details)``.

    ``value`` is the result (finished) or the exception (failed); ``details`` the traceback text of
    an unexpected error (empty for a ConvScopeError, whose message already names the fix)."""
    try:
        token.raise_if_cancelled()
        value = call()
    except JobCancelled:
        return Outcome.CANCELLED, None, ""
    except BaseException as error:  # noqa: BLE001 - every error goes to the one handler
        if token.cancelled and not isinstance(error, ConvScopeError):
            return Outcome.CANCELLED, None, ""  # errors while tearing down a cancelled job
        details = "" if isinstance(error, ConvScopeError) else traceback.format_exc()
        return Outcome.FAILED, error, details
    # engine jobs that stop cleanly on cancel return a result with status "cancelled" (or nothing)
    if token.cancelled and (value is None or getattr(value, "status", None) == "cancelled"):
        return Outcome.CANCELLED, None, ""
    return Outcome.FINISHED, value, ""
