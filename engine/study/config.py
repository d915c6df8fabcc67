"""StudyConfig and the ladder: the book's five rungs as training settings, per profile.

| # | rung | strategy | what changes |
|---|---|---|---|
| 1 | ``scratch`` | scratch | the book's convnet, no augmentation |
| 2 | ``scratch+aug`` | scratch | with augmentation (the convnet has its dropout) |
| 3 | ``features`` | features | cached features of the frozen base, dense head |
| 4 | ``features-augmented`` | features-augmented | frozen base inside the model, augmentation |
| 5 | ``finetune`` | finetune | rung 4's model, top of the base unfrozen at a low rate |

Profiles: ``quick`` (minutes on two cores, following docs/DEMO_DATA.md: the convnet at 64 px, the
transfer rungs at 96 px on average-pooled features, the mild augmentation, few epochs) and ``full``
(the base's own input size for the transfer rungs, the book convnet's 150 px capped by the images'
median side, average-pooled features, early stopping on validation). Every rung uses the study's one
frozen split, so all five are judged on the same test images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import DatasetError, InvalidSetting
from engine.train.config import SavedConfig

PROFILES = ("quick", "full")
RUNGS = ("scratch", "scratch+aug", "features", "features-augmented", "finetune")
TRANSFER_RUNGS = ("features", "features-augmented", "finetune")

# epochs per rung and patience, per profile (early stopping on validation loss picks the epoch)
_EPOCHS = {
    "quick": {"scratch": 15, "scratch+aug": 15, "features": 30, "features-augmented": 4, "finetune": 4},
    # full: the base end to end is what costs (one pass of the base per image and epoch), so rungs 4
    # and 5 get few epochs
    "full": {"scratch": 20, "scratch+aug": 20, "features": 30, "features-augmented": 4, "finetune": 6},
}
_PATIENCE = {"quick": 4, "full": 5}
# fine-tuning's optimizer and peak rate, chosen on validation (docs/study.md, bench/bench_finetune_levers.py):
# from rung 4 on the demo data, Adam with a warm-up epoch and cosine decay peaking at 3e-4 had the
# lowest validation loss (224 px: 0.136-0.156 over 3 seeds, against 0.152-0.166 at 1e-4, 0.162 at
# 5e-5 and 0.174-0.216 for the book's constant RMSprop 1e-5; 96 px: 0.177 against 0.184-0.196 at 1e-4)
_FINETUNE_OPTIMIZER = {"quick": ("adam-cosine", 3e-4), "full": ("adam-cosine", 3e-4)}
# quick: the convnet at 64 px (2.5 s/epoch on 2 cores), the base at 96 px (cached features 0.914 on
# the demo data against 0.936 at 224 px, a quarter of the time); None: the model's own size, and for
# the full profile's convnet see scratch_size
_SCRATCH_SIZE = {"quick": 64, "full": None}
_TRANSFER_SIZE = {"quick": 96, "full": None}
# full: the book convnet's 150 px, but never upscaling past the images' own (median) side, and at
# least 64 px (its four conv + pool stages still leave a 2x2 map): upscaling adds no information,
# only time; the demo's 28-px photos train at 64 px (2.5 s/epoch on 2 cores instead of ~14 s)
BOOK_SIZE, SCRATCH_MIN_SIZE = 150, 64
# one pooling for rungs 3-5 (rung 5 continues rung 4's model): 1,280 average-pooled features (quick:
# as the demo measured; full: at 224 px they beat the flattened 7x7x1280 map on validation, docs/study.md)
_POOLING = {"quick": "avg", "full": "avg"}


@dataclass(frozen=True)
class StudyConfig(SavedConfig):
    """Settings of one study. ``resume``: the folder of an interrupted study to continue (its own
    settings are used; ``data`` may be left empty). The last four fields are for tests and benchmarks
    (not on the command line but ``tta``, ``--no-tta``): ``max_epochs`` caps every rung, ``image_size`` replaces the profile's,
    ``batch_size`` and ``max_per_class`` as in TrainConfig; ``preset`` is the from-scratch convnet."""

    data: str = ""
    profile: str = "quick"
    base: str = "efficientnet-lite0"
    out: str | None = None
    resume: str | None = None
    seed: int = 0
    max_epochs: int | None = None
    image_size: int | None = None
    batch_size: int = 32
    max_per_class: int | None = None
    preset: str = "book-scratch"
    tta: bool = True  # a flip-averaged test accuracy beside each rung's plain one (never instead)

    def validate(self) -> None:
        if self.resume:
            if not (Path(self.resume) / "study.json").is_file():
                raise InvalidSetting(f"'{self.resume}' is not a study folder (no study.json)",
                                     "give the folder a `convscope study` wrote")
            return
        if self.profile not in PROFILES:
            raise InvalidSetting(f"unknown profile '{self.profile}'", f"choose one of: {', '.join(PROFILES)}")
        if not self.data or not Path(self.data).is_dir():
            raise DatasetError(f"data folder '{self.data}' does not exist",
                               "give a folder of class folders (or of train/validation/test folders)")
        from engine.bases.registry import get_base  # noqa: PLC0415

        get_base(self.base)  # InvalidSetting naming the known bases
        if self.out is not None and (Path(self.out) / "study.json").exists():
            raise InvalidSetting(f"study folder '{self.out}' already holds a study",
                                 "choose another --out, or continue it with --resume")
        if self.max_epochs is not None and self.max_epochs < 1:
            raise InvalidSetting(f"max epochs {self.max_epochs} is invalid", "use at least 1")


def rung_folder_name(index: int, rung: str) -> str:
    return f"{index}-{rung.replace('+', '-')}"


def scratch_size(median_side: int | None) -> int:
    """The full profile's convnet size: the book's 150 px capped by the images' median side, ≥ 64."""
    if not median_side:
        return BOOK_SIZE
    return max(SCRATCH_MIN_SIZE, min(BOOK_SIZE, int(median_side)))


def rung_settings(cfg: StudyConfig, rung: str, median_side: int | None = None) -> dict[str, Any]:
    """The TrainConfig settings of ``rung`` (without data, out and head_from_run). ``median_side``:
    the median shorter side of the training images (the full profile's convnet size follows it)."""
    epochs = _EPOCHS[cfg.profile][rung]
    if cfg.max_epochs:
        epochs = min(epochs, cfg.max_epochs)
    settings: dict[str, Any] = dict(epochs=epochs, patience=_PATIENCE[cfg.profile], seed=cfg.seed,
                                    batch_size=cfg.batch_size, max_per_class=cfg.max_per_class, tensorboard=False)
    # the mild augmentation (flip, small shifts): the book's rotation and zoom hurt on aligned photos
    if rung in ("scratch", "scratch+aug"):
        settings.update(strategy="scratch", preset=cfg.preset, augment=rung == "scratch+aug", augmentation="mild")
        size = _SCRATCH_SIZE[cfg.profile] or scratch_size(median_side)
    else:
        settings.update(strategy=rung, base=cfg.base, augment=rung != "features", augmentation="mild")
        size = _TRANSFER_SIZE[cfg.profile]
        if _POOLING[cfg.profile]:  # one pooling for rungs 3-5: rung 5 continues rung 4's model
            settings["head_pooling"] = _POOLING[cfg.profile]
    if rung == "finetune":
        settings["head_epochs"] = 1  # unused: the head comes from rung 4 (head_from_run)
        settings["optimizer"], settings["learning_rate"] = _FINETUNE_OPTIMIZER[cfg.profile]
    size = cfg.image_size or size
    if size:
        settings["image_size"] = size
    return settings
