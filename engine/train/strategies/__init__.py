"""The registry of training strategies (DLwP chapter 5): one module per strategy, looked up by name.

| name | module | what it trains |
|---|---|---|
| ``scratch`` | :mod:`.scratch` | a preset (book-scratch, mini-xception) from random weights |
| ``features`` | :mod:`.cached_features` | a dense head on cached features of the frozen base |
| ``features-augmented`` | :mod:`.features_augmented` | frozen base inside the model, end to end, augmented |
| ``finetune`` | :mod:`.finetune` | head first, then the top of the base unfrozen at a low rate |

A strategy module defines ``train(ctx)`` (it builds or resumes its model and fits it through
:mod:`engine.train.fitting`) and may define ``planned_epochs(cfg)`` and ``first_phase(cfg, state)``;
the life cycle around it (run folder, split, state, events) is :mod:`engine.train.lifecycle`.
Modules are imported on first use, so this registry loads no TensorFlow. ``train``, ``resume``
and ``TrainResult`` are re-exported here: callers (the GUI's worker target, the CLI, the cluster)
have always reached training as ``engine.train.strategies.train``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from engine.errors import InvalidSetting
from engine.train.lifecycle import TrainResult, resume, train

__all__ = ["Strategy", "TrainResult", "get_strategy", "register_strategy", "resume", "strategy_names", "train"]

_MODULES: dict[str, str] = {
    "scratch": "engine.train.strategies.scratch",
    "features": "engine.train.strategies.cached_features",
    "features-augmented": "engine.train.strategies.features_augmented",
    "finetune": "engine.train.strategies.finetune",
}


@dataclass(frozen=True)
class Strategy:
    name: str
    train: Callable[[Any], None]  # train(ctx: RunContext)
    planned_epochs: Callable[[Any], int]  # planned_epochs(cfg: TrainConfig)
    first_phase: Callable[[Any, dict], str]  # first_phase(cfg, state) -> the RunStarted phase


def register_strategy(name: str, module: str) -> None:
    """Add (or replace) a strategy implemented by ``module`` (imported on first use)."""
    _MODULES[name] = module


def strategy_names() -> list[str]:
    return list(_MODULES)


def get_strategy(name: str) -> Strategy:
    if name not in _MODULES:
        raise InvalidSetting(f"unknown strategy '{name}'", f"choose one of: {', '.join(_MODULES)}")
    module = importlib.import_module(_MODULES[name])
    return Strategy(name=name, train=module.train,
                    planned_epochs=getattr(module, "planned_epochs", lambda cfg: int(cfg.epochs)),
                    first_phase=getattr(module, "first_phase", lambda cfg, state: "train"))
