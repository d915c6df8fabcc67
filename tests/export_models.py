"""Trained runs of each kind of model ConvScope builds, for the export tests (one epoch each, 48 px).

- ``scratch-aug``: the book's convnet with the book's augmentation block, sigmoid head (2 classes);
- ``frozen-base``: a frozen nested base holding a ``Normalization`` layer (as the VGG-family bases
  do; it is what breaks Keras's own ONNX export) + dense head, augmentation, softmax (3 classes);
- ``finetuned``: the same base fine-tuned from its last conv layer after the head phase, sigmoid.
"""

from __future__ import annotations

from pathlib import Path

from imagegen import make_shapes_dataset

from engine.bases.registry import BaseSpec, WeightsStatus, register_base, unregister_base

NORM_BASE = "tiny-norm-base"
KINDS = ("scratch-aug", "frozen-base", "finetuned")


def build_norm_base(include_top: bool = False, input_size: int | None = None):
    from models import pretrained_like_base

    return pretrained_like_base(
        "tiny_norm_base", input_size or 48, seed=3, first_pool=4,
        preprocess=lambda k: k.layers.Normalization(mean=[120.0, 115.0, 100.0], variance=[3600.0, 3500.0, 3400.0],
                                                    name="normalization"))


def register() -> None:
    register_base(BaseSpec(
        name=NORM_BASE, label="tiny test base with Normalization (random, fixed seed)",
        builder="export_models:build_norm_base", input_size=48, min_input_size=48, last_conv_layer="conv2",
        finetune_from="conv2", weights_source="test fixture", weights_status=lambda: WeightsStatus(True, "seed 3"),
    ))


def unregister() -> None:
    unregister_base(NORM_BASE)


def train_runs(root: Path) -> dict[str, Path]:
    """One run folder per kind under ``root``; the base must be registered."""
    from engine.train.config import TrainConfig
    from engine.train.strategies import train

    two = make_shapes_dataset(root / "two", per_class=12, size=48)
    three = make_shapes_dataset(root / "three", per_class=12, size=48, classes=("circle", "square", "triangle"))
    common = dict(image_size=48, batch_size=8, epochs=1, patience=0, tensorboard=False)
    configs = {
        "scratch-aug": TrainConfig(data=str(two), strategy="scratch", augment=True, augmentation="book",
                                   out=str(root / "scratch-aug"), **common),
        "frozen-base": TrainConfig(data=str(three), strategy="features-augmented", base=NORM_BASE,
                                   augmentation="book", out=str(root / "frozen-base"), **common),
        # augment=False: with augmentation, finetune picks the augmentation block as its base (a bug left
        # to the training code's owners; reported)
        "finetuned": TrainConfig(data=str(two), strategy="finetune", base=NORM_BASE, head_epochs=1, augment=False,
                                 out=str(root / "finetuned"), **common),
    }
    return {kind: Path(train(config).run_dir) for kind, config in configs.items()}
