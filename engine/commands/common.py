"""Helpers shared by the CLI command modules."""

from __future__ import annotations

import json
import sys
from typing import Any

from engine.events import Event


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
