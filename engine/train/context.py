"""What a running training job hands its strategy: settings, run folder, split, sink, cancel, state.

:class:`RunContext` is made by :mod:`engine.train.lifecycle` for one run (new or resumed) and passed
to the strategy's ``train(ctx)``; the strategy reads it and sets ``finalize`` for what must happen
after training however it ends (e.g. writing the full model of a cached-features run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from engine.events import CancelToken, Sink, Warning_
from engine.train.config import TrainConfig
from engine.train.rundir import RunState


@dataclass
class RunContext:
    cfg: TrainConfig
    run_dir: Path
    split: Any
    emit: Sink
    cancel: CancelToken | None
    run: RunState
    scope: Any  # the tf.distribute strategy whose scope builds and trains the model
    resuming: bool
    batch_size: int
    warnings: list[str] = field(default_factory=list)
    finalize: Callable[[], None] | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.split.classes)

    @property
    def num_classes(self) -> int:
        return len(self.split.classes)

    @property
    def size(self) -> int:
        return int(self.cfg.image_size)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.emit(Warning_(message))
