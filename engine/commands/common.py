"""Helpers shared by the CLI command modules: output, event sinks, Ctrl-C as a cancel token."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from typing import Any

from engine.events import (CancelToken, CheckpointSaved, EpochEnded, Event, Progress, RunCancelled, RunFailed,
                           RunFinished, RunStarted, Status, Warning_)


def print_json(obj: Any) -> None:
    """One JSON document on stdout (``--json`` output)."""
    out = sys.stdout
    if out is not None:
        out.write(json.dumps(obj, indent=2, default=str) + "\n")
        out.flush()


def say(text: str = "") -> None:
    """Human-readable output; safe in a windowed build where ``sys.stdout`` is None."""
    out = sys.stdout
    if out is not None:
        out.write(text + "\n")
        out.flush()


def json_event_sink(event: Event) -> None:
    """``--json-events``: one JSON object per line."""
    out = sys.stdout
    if out is not None:
        out.write(json.dumps(event.to_dict(), default=str) + "\n")
        out.flush()


def _format_metrics(metrics: dict[str, float]) -> str:
    order = ["loss", "accuracy", "val_loss", "val_accuracy"]
    keys = [k for k in order if k in metrics] + sorted(k for k in metrics if k not in order and k != "learning_rate")
    return "  ".join(f"{k} {metrics[k]:.4f}" for k in keys)


def human_sink(event: Event) -> None:
    """Progress lines for people: status, warnings, one line per epoch, the outcome."""
    if isinstance(event, Status):
        say(event.message)
    elif isinstance(event, Warning_):
        say(f"warning: {event.message}")
    elif isinstance(event, Progress):
        if event.total and event.done == event.total:
            say(f"{event.message or 'progress'}: {event.done}/{event.total}")
    elif isinstance(event, RunStarted):
        say(f"run folder {event.run_dir} — strategy {event.strategy}, up to {event.epochs} epochs")
    elif isinstance(event, EpochEnded):
        phase = f" [{event.phase}]" if event.phase != "train" else ""
        say(f"epoch {event.epoch}/{event.epochs}{phase}  {_format_metrics(event.metrics)}  ({event.seconds:.1f} s)")
    elif isinstance(event, CheckpointSaved):
        pass
    elif isinstance(event, RunFinished):
        say(f"finished: {event.run_dir}  best {_format_metrics(event.best_metrics)}")
    elif isinstance(event, RunCancelled):
        say(f"cancelled after epoch {event.last_epoch}: {event.run_dir} (continue with --resume)")
    elif isinstance(event, RunFailed):
        say(f"failed: {event.error}")


@contextlib.contextmanager
def cancel_on_interrupt():
    """Ctrl-C sets the cancel token (the run stops cleanly after the current batch); a second
    Ctrl-C interrupts at once."""
    token = CancelToken()
    if threading.current_thread() is not threading.main_thread():
        yield token
        return

    def handler(signum, frame):
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)
