"""TrainConfig: every setting of a training run, validated before anything heavy happens.

A run folder's ``config.json`` holds ``TrainConfig.to_dict()`` (plus the classes and the resolved
image size), so a run can be repeated or resumed from its folder alone.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import DatasetError, InvalidSetting

STRATEGIES = ("scratch", "features", "features-augmented", "finetune")
BASE_STRATEGIES = ("features", "features-augmented", "finetune")
DISTRIBUTIONS = ("default", "mirrored")
MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 1024

STRATEGY_HELP = {
    "scratch": "a small convnet trained from random weights (optionally with augmentation)",
    "features": "run the frozen pretrained base once, cache its features, train a dense head on them",
    "features-augmented": "frozen pretrained base inside the model, trained end to end with augmentation",
    "finetune": "frozen base + head first, then unfreeze the top of the base at a low learning rate",
}


class SavedConfig:
    """A config dataclass that is saved as JSON: ``to_dict()`` and back with ``from_dict(data)``.

    ``from_dict`` skips keys the dataclass no longer has, so files written by another version load.
    """

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[_Config], data: dict[str, Any]) -> _Config:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


_Config = TypeVar("_Config", bound=SavedConfig)


@dataclass(frozen=True)
class TrainConfig(SavedConfig):
    """Settings of one training run. ``None`` means "the strategy's default" (see :meth:`resolved`).

    - ``data``: a folder of class folders, or one with train/validation/test subfolders.
    - ``strategy``: one of :data:`STRATEGIES`.
    - ``base``: registry name of the pretrained base (strategies other than scratch).
    - ``preset``: from-scratch model (``book-scratch`` or ``mini-xception``).
    - ``image_size``: side of the square input; default 150 for scratch, the base's size otherwise.
    - ``augment`` / ``augmentation``: augmentation block inside the model (training only); default
      on for features-augmented and finetune, off for scratch; impossible for cached features.
    - ``learning_rate``: the optimizer's rate (finetune: phase 2); default from ``recipe`` ("default"
      or the book's values, see :mod:`engine.models.presets`). ``head_learning_rate``: finetune phase 1.
    - ``optimizer``: "rmsprop" (the book's, constant rate) or "adam-cosine" (Adam, one epoch of
      warm-up, then cosine decay over the epochs); finetune: of phase 2, phase 1 keeps RMSprop.
    - ``head_pooling``: "flatten" (the book) or "avg" (global average, 1 vector per image).
    - ``patience``: early stopping on validation loss after this many epochs without progress; 0 = off.
    - ``epochs``: maximum epochs (finetune: of phase 2; ``head_epochs`` bounds phase 1).
    - ``head_from_run``: finetune reuses the trained model of this finished features-augmented run
      instead of training phase 1.
    - ``max_per_class``: use at most this many images per class and subset (quick experiments).
    - ``precision``: "float32", "mixed_bfloat16", "mixed_float16" or "auto" (see :mod:`engine.precision`:
      bfloat16 only on CPUs with AMX/AVX-512-BF16, float16 only on GPUs with tensor cores).
    - ``out``: the run folder (default: a new dated folder under ``runs_root`` or the user's runs).
    """

    data: str
    strategy: str = "scratch"
    base: str = "efficientnet-lite0"
    preset: str = "book-scratch"
    epochs: int = 30
    batch_size: int = 32
    image_size: int | None = None
    augment: bool | None = None
    augmentation: str = "mild"
    learning_rate: float | None = None
    head_learning_rate: float | None = None
    recipe: str = "default"
    optimizer: str = "rmsprop"
    head_pooling: str = "flatten"
    seed: int = 0
    patience: int = 5
    head_epochs: int | None = None
    finetune_from: str | None = None
    head_from_run: str | None = None
    validation_fraction: float = 0.25
    test_fraction: float = 0.25
    max_per_class: int | None = None
    out: str | None = None
    runs_root: str | None = None
    distribute: str = "default"
    precision: str = "float32"
    tensorboard: bool = True

    # ----------------------------------------------------------------- derived values
    @property
    def uses_base(self) -> bool:
        return self.strategy in BASE_STRATEGIES

    @property
    def model_name(self) -> str:
        return self.base if self.uses_base else self.preset

    def resolved(self) -> "TrainConfig":
        """A copy with every ``None`` default filled in (what config.json records)."""
        from engine.models import presets  # noqa: PLC0415 (no TF at import)

        changes: dict[str, Any] = {}
        if self.image_size is None:
            if self.uses_base:
                from engine.bases.registry import get_base  # noqa: PLC0415

                changes["image_size"] = get_base(self.base).input_size
            else:
                changes["image_size"] = presets.get_preset(self.preset).default_image_size
        if self.augment is None:
            changes["augment"] = self.strategy in ("features-augmented", "finetune")
        if self.learning_rate is None:
            changes["learning_rate"] = presets.default_learning_rate(self.strategy, self.preset, self.recipe,
                                                                     self.optimizer)
        if self.strategy == "finetune":
            if self.head_learning_rate is None:
                changes["head_learning_rate"] = presets.default_learning_rate(
                    "features-augmented", self.preset, self.recipe)
            if self.head_epochs is None:
                changes["head_epochs"] = self.epochs
        return dataclasses.replace(self, **changes)

    # ----------------------------------------------------------------- validation
    def validate(self) -> None:
        """Reject absurd or inconsistent settings with an :class:`InvalidSetting` naming the fix."""
        from engine.models import presets  # noqa: PLC0415

        if self.strategy not in STRATEGIES:
            raise InvalidSetting(f"unknown strategy '{self.strategy}'", f"choose one of: {', '.join(STRATEGIES)}")
        if not self.data or not Path(self.data).is_dir():
            raise DatasetError(f"data folder '{self.data}' does not exist",
                               "give a folder of class folders (or of train/validation/test folders)")
        minimum = MIN_IMAGE_SIZE
        if self.uses_base:
            from engine.bases.registry import get_base  # noqa: PLC0415

            spec = get_base(self.base)  # raises InvalidSetting for an unknown base
            minimum = max(minimum, spec.min_input_size)
        else:
            minimum = max(minimum, presets.get_preset(self.preset).min_image_size)  # raises if unknown
        if self.image_size is not None:
            if not _is_int(self.image_size) or not minimum <= self.image_size <= MAX_IMAGE_SIZE:
                raise InvalidSetting(f"image size {self.image_size} is out of range",
                                     f"use {minimum} to {MAX_IMAGE_SIZE} pixels")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise InvalidSetting(f"batch size {self.batch_size} is invalid", "use 1 or more (32 is usual)")
        if not _is_int(self.epochs) or self.epochs < 1:
            raise InvalidSetting(f"epochs {self.epochs} is invalid", "train for at least 1 epoch")
        if self.head_epochs is not None and (not _is_int(self.head_epochs) or self.head_epochs < 1):
            raise InvalidSetting(f"head epochs {self.head_epochs} is invalid", "use at least 1")
        for name in ("learning_rate", "head_learning_rate"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value)
                                      or value <= 0):
                raise InvalidSetting(f"{name.replace('_', ' ')} {value} is invalid",
                                     "use a positive number such as 1e-4")
        if self.recipe not in presets.RECIPES:
            raise InvalidSetting(f"unknown recipe '{self.recipe}'", f"choose one of: {', '.join(presets.RECIPES)}")
        if self.optimizer not in presets.OPTIMIZERS:
            raise InvalidSetting(f"unknown optimizer '{self.optimizer}'",
                                 f"choose one of: {', '.join(presets.OPTIMIZERS)}")
        if self.head_pooling not in presets.HEAD_POOLINGS:
            raise InvalidSetting(f"unknown head pooling '{self.head_pooling}'",
                                 f"choose one of: {', '.join(presets.HEAD_POOLINGS)}")
        if self.strategy == "features" and self.augment:
            raise InvalidSetting("the features strategy trains on cached features and cannot augment",
                                 "use --strategy features-augmented, or --no-augment")
        if self.augment is not False:
            try:
                from engine.data.augment import AUGMENTATION_PRESETS  # noqa: PLC0415
            except ImportError:  # the data module is not installed yet: checked when building
                AUGMENTATION_PRESETS = None
            if AUGMENTATION_PRESETS is not None and self.augmentation not in AUGMENTATION_PRESETS:
                raise InvalidSetting(f"unknown augmentation preset '{self.augmentation}'",
                                     f"choose one of: {', '.join(AUGMENTATION_PRESETS)}")
        if not _is_int(self.seed) or self.seed < 0:
            raise InvalidSetting(f"seed {self.seed} is invalid", "use a whole number ≥ 0")
        if not _is_int(self.patience) or self.patience < 0:
            raise InvalidSetting(f"patience {self.patience} is invalid", "use 0 (off) or more epochs")
        for name in ("validation_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise InvalidSetting(f"{name.replace('_', ' ')} {value} is invalid", "use a fraction between 0 and 1")
        if self.validation_fraction + self.test_fraction >= 1:
            raise InvalidSetting("validation and test fractions leave no training images",
                                 "make their sum smaller than 1")
        if self.max_per_class is not None and (not _is_int(self.max_per_class) or self.max_per_class < 1):
            raise InvalidSetting(f"max per class {self.max_per_class} is invalid", "use 1 or more, or leave it unset")
        from engine.precision import PRECISIONS  # noqa: PLC0415 (no TF at import)

        if self.precision not in PRECISIONS:
            raise InvalidSetting(f"unknown precision '{self.precision}'", f"choose one of: {', '.join(PRECISIONS)}")
        if self.distribute not in DISTRIBUTIONS:
            raise InvalidSetting(f"unknown distribution '{self.distribute}'", f"choose one of: {', '.join(DISTRIBUTIONS)}")
        if self.head_from_run is not None:
            if self.strategy != "finetune":
                raise InvalidSetting("head from run is only used by the finetune strategy", "drop the setting")
            if not (Path(self.head_from_run) / "config.json").is_file():
                raise InvalidSetting(f"'{self.head_from_run}' is not a run folder",
                                     "give the folder of a finished features-augmented run")
        if self.out is not None:
            out = Path(self.out)
            if (out / "config.json").exists():
                raise InvalidSetting(f"run folder '{out}' already holds a run",
                                     "choose another --out, or continue it with --resume")
            check_writable(out, "run folder")
        if self.runs_root is not None:
            check_writable(Path(self.runs_root), "runs folder")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_writable(folder: Path, what: str) -> None:
    """Raise InvalidSetting unless ``folder`` exists writable or can be created."""
    probe = Path(folder).absolute()
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InvalidSetting(f"{what} '{folder}' is inside a file ('{probe}')", "choose a folder path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InvalidSetting(f"{what} '{folder}' cannot be written", "choose a folder you can write to")
