"""Typed events that long jobs report through a sink, and the cancel token they obey.

Every long engine job has the signature ``run(config, emit, cancel) -> Result``:
``emit`` is any callable taking an :class:`Event`; ``cancel`` is a :class:`CancelToken`.
The same events feed the GUI's job runner, the CLI's ``--json-events`` and the benchmarks.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Event:
    """Base class of every event."""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["event"] = type(self).__name__
        return data


Sink = Callable[[Event], None]


def discard(event: Event) -> None:
    """A sink that drops every event (for callers that do not listen)."""


@dataclass(frozen=True)
class Status(Event):
    message: str


@dataclass(frozen=True)
class Progress(Event):
    """Generic step progress of a job (scan, feature extraction, filter ascent...)."""

    done: int
    total: int
    message: str = ""


@dataclass(frozen=True)
class PartialResult(Event):
    """A piece of a result that is ready before the whole job ends (e.g. one filter pattern)."""

    key: str
    value: Any = field(compare=False, repr=False)


@dataclass(frozen=True)
class Warning_(Event):
    message: str


@dataclass(frozen=True)
class RunStarted(Event):
    run_dir: str
    strategy: str
    epochs: int
    phase: str = "train"


@dataclass(frozen=True)
class BatchProgress(Event):
    epoch: int
    batch: int
    batches: int
    metrics: dict[str, float]
    phase: str = "train"


@dataclass(frozen=True)
class EpochEnded(Event):
    epoch: int  # 1-based, counted over the whole run (phases continue the count)
    epochs: int
    metrics: dict[str, float]
    seconds: float
    phase: str = "train"


@dataclass(frozen=True)
class CheckpointSaved(Event):
    path: str
    epoch: int
    best: bool


@dataclass(frozen=True)
class RunFinished(Event):
    run_dir: str
    best_metrics: dict[str, float]


@dataclass(frozen=True)
class RunCancelled(Event):
    run_dir: str
    last_epoch: int


@dataclass(frozen=True)
class RunFailed(Event):
    run_dir: str
    error: str


@dataclass(frozen=True)
class WorkerJoined(Event):
    """A worker of a training cluster is up (its TensorFlow server listens); ``task`` 0 is the chief."""

    task: int
    address: str


@dataclass(frozen=True)
class StudyRungStarted(Event):
    """A rung of a study (engine.study) starts training, resumes, or is skipped (``status`` says why)."""

    index: int  # 1-based
    total: int
    name: str
    run_dir: str
    status: str = "training"  # "training" | "resuming" | "evaluating" | "finished earlier" | "skipped"
    val_accuracy: list[float] = field(default_factory=list)  # "resuming": the curve of its epochs so far
    reason: str = ""  # "skipped": why (the same words study.json keeps)


@dataclass(frozen=True)
class StudyRungFinished(Event):
    """A rung's result on the study's test images (``result``: the rung's entry of study.json), also
    sent again for each rung a resumed study finds finished, so a listener shows the whole study."""

    index: int
    total: int
    name: str
    result: dict[str, Any] = field(default_factory=dict)
    comparisons: list[dict[str, Any]] = field(default_factory=list)  # the study's paired tests so far


class JobCancelled(Exception):
    """Raised inside a job when its cancel token is set; callers treat it as a clean stop."""


class CancelToken:
    """A thread-safe flag a job checks between steps (cooperative cancel)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise JobCancelled()
