"""Model presets: the book's small convnet, a mini-Xception, and the dense head for transfer learning.

Every model built here takes raw RGB float32 in 0..255, shape (S, S, 3); its preprocessing
(``Rescaling(1/255)`` for the from-scratch presets, the base's own layer for transfer models) is a
layer inside the model. An optional augmentation block (``engine.data.augment.build_augmentation``)
is placed right after the input; Keras augmentation layers are active only in training.

Classifier output: two classes → one sigmoid unit with binary cross-entropy (the book's setting);
more classes → softmax with sparse categorical cross-entropy.

Learning rates (RMSprop, as in the book):

======================  ============  ==========================================================
model / strategy        "book"        "default" (why it differs)
======================  ============  ==========================================================
scratch presets         1e-4          1e-4 (mini-xception: 1e-3, it has BatchNorm)
features head           2e-5          1e-3 — on the demo data 2e-5 is still rising after 30 epochs
                                      while 1e-3 converges (docs/DEMO_DATA.md)
features-augmented      2e-5          1e-3 for the same reason
finetune phase 2        1e-5          1e-5
======================  ============  ==========================================================

This module imports no TensorFlow at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InvalidSetting, look_up
from engine.tf_runtime import keras


@dataclass(frozen=True)
class PresetInfo:
    name: str
    description: str
    default_image_size: int
    min_image_size: int


PRESETS: dict[str, PresetInfo] = {
    "book-scratch": PresetInfo(
        "book-scratch",
        "The book's convnet (DLwP ch. 5): Conv2D 32-64-128-128 3x3 relu, max-pool 2x2 after each, "
        "Flatten, Dropout 0.5, Dense 512 relu, classifier. 3,453,121 parameters at 150x150, 2 classes.",
        150,
        46,  # four valid 3x3 convs and 2x2 pools need at least 46 pixels
    ),
    "mini-xception": PresetInfo(
        "mini-xception",
        "A small Xception-like DAG (DLwP 2nd ed. ch. 9 / Keras 'image classification from scratch'): "
        "entry conv, 5 blocks of SeparableConv2D + BatchNorm with residual connections, global "
        "average pooling, Dropout 0.5, classifier.",
        150,
        32,
    ),
}

HEAD_UNITS = 256
HEAD_DROPOUT = 0.5
HEAD_POOLINGS = ("flatten", "avg")

RECIPES = ("default", "book")
# "rmsprop": the book's RMSprop at a constant rate. "adam-cosine": Adam, one epoch of linear warm-up
# to the rate, then a cosine decay as long as the run's (finetune: the fine-tuning phase's) epochs,
# so the last epoch ends at 7 % of the rate for 6 epochs (the schedule that was measured) —
# fine-tuning the demo data from rung 4 it reached validation 0.948-0.960 (3e-4) and 0.951-0.957
# (1e-4) against RMSprop 1e-5's 0.917-0.941 in 6 epochs, 3-4 seeds each (docs/study.md).
OPTIMIZERS = ("rmsprop", "adam-cosine")
# fine-tuning's peak rate with "adam-cosine" when none is given: the measured recipe (the book's 1e-5
# is RMSprop's constant rate; Adam warming up to 3e-4 had the lowest validation loss on the demo
# data, below 1e-4 and 5e-5, docs/study.md)
ADAM_COSINE_FINETUNE_RATE = 3e-4

_LEARNING_RATES: dict[tuple[str, str], float] = {
    ("book-scratch", "book"): 1e-4,
    ("book-scratch", "default"): 1e-4,
    ("mini-xception", "book"): 1e-3,
    ("mini-xception", "default"): 1e-3,
    ("features", "book"): 2e-5,
    ("features", "default"): 1e-3,
    ("features-augmented", "book"): 2e-5,
    ("features-augmented", "default"): 1e-3,
    ("finetune", "book"): 1e-5,
    ("finetune", "default"): 1e-5,
}


def preset_names() -> list[str]:
    return list(PRESETS)


def get_preset(name: str) -> PresetInfo:
    return look_up(PRESETS, name, "preset")


def default_learning_rate(strategy: str, preset: str = "book-scratch", recipe: str = "default",
                          optimizer: str = "rmsprop") -> float:
    """The learning rate a strategy uses when the user gives none (see the module table): RMSprop's,
    and for fine-tuning with "adam-cosine" its measured peak (:data:`ADAM_COSINE_FINETUNE_RATE`).

    For ``finetune`` this is the phase-2 rate; phase 1 (the head) uses the ``features-augmented`` rate.
    """
    if recipe not in RECIPES:
        raise InvalidSetting(f"unknown recipe '{recipe}'", f"choose one of: {', '.join(RECIPES)}")
    key = preset if strategy == "scratch" else strategy
    if strategy == "finetune" and optimizer == "adam-cosine":
        return ADAM_COSINE_FINETUNE_RATE
    try:
        return _LEARNING_RATES[(key, recipe)]
    except KeyError:
        raise InvalidSetting(f"unknown strategy '{strategy}'") from None


def binary(num_classes: int) -> bool:
    if num_classes < 2:
        raise InvalidSetting(
            f"a classifier needs at least 2 classes, got {num_classes}",
            "add a second class folder to the data",
        )
    return num_classes == 2


def classifier(x, num_classes: int, name: str = "predictions"):
    """One sigmoid unit for two classes, a softmax otherwise; in float32 even under a mixed policy
    (Keras' mixed-precision advice: probabilities and the loss keep their precision)."""
    layers = keras().layers
    if binary(num_classes):
        return layers.Dense(1, activation="sigmoid", name=name, dtype="float32")(x)
    return layers.Dense(num_classes, activation="softmax", name=name, dtype="float32")(x)


def loss_for(num_classes: int) -> str:
    return "binary_crossentropy" if binary(num_classes) else "sparse_categorical_crossentropy"


def make_optimizer(name: str, learning_rate: float, steps_per_epoch: int = 1, epochs: int = 1):
    """The optimizer called ``name`` (see :data:`OPTIMIZERS`); the schedule of "adam-cosine" spans
    ``epochs`` epochs of ``steps_per_epoch`` optimizer steps."""
    k = keras()
    if name == "rmsprop":
        return k.optimizers.RMSprop(learning_rate=learning_rate)
    if name != "adam-cosine":
        raise InvalidSetting(f"unknown optimizer '{name}'", f"choose one of: {', '.join(OPTIMIZERS)}")
    steps_per_epoch, epochs = max(1, int(steps_per_epoch)), max(1, int(epochs))
    schedule = k.optimizers.schedules.CosineDecay(
        0.0, decay_steps=steps_per_epoch * epochs, alpha=0.0,
        warmup_target=float(learning_rate), warmup_steps=steps_per_epoch)
    return k.optimizers.Adam(learning_rate=schedule)


def compile_model(model, num_classes: int, learning_rate: float, steps_per_execution: int = 1, *,
                  optimizer: str = "rmsprop", steps_per_epoch: int = 1, epochs: int = 1) -> None:
    """The optimizer (the book's RMSprop unless told) + the loss that fits the head, with accuracy.

    ``steps_per_execution`` > 1 runs several batches per compiled call: worth it only where a step is
    tiny (a dense head on cached features), where Keras's per-step overhead would dominate."""
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate, steps_per_epoch, epochs),
        loss=loss_for(num_classes),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )


def _check_size(image_size: int, minimum: int, what: str) -> None:
    if not isinstance(image_size, int) or image_size < minimum:
        raise InvalidSetting(f"image size {image_size} is too small for {what}", f"use at least {minimum}")


def build_preset(name: str, image_size: int, num_classes: int, *, augmentation=None):
    """Build an (uncompiled) from-scratch model. ``augmentation``: a Keras layer/Sequential or None."""
    info = get_preset(name)
    _check_size(image_size, info.min_image_size, f"preset '{name}'")
    binary(num_classes)
    if name == "book-scratch":
        return _book_scratch(image_size, num_classes, augmentation)
    return _mini_xception(image_size, num_classes, augmentation)


def _input_block(image_size: int, augmentation):
    k = keras()
    inputs = k.Input(shape=(image_size, image_size, 3), name="image")
    x = augmentation(inputs) if augmentation is not None else inputs
    return inputs, x


def _book_scratch(image_size: int, num_classes: int, augmentation):
    k = keras()
    layers = k.layers
    inputs, x = _input_block(image_size, augmentation)
    x = layers.Rescaling(1.0 / 255, name="rescaling")(x)
    for i, filters in enumerate((32, 64, 128, 128), start=1):
        x = layers.Conv2D(filters, 3, activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    x = layers.Dense(512, activation="relu", name="dense")(x)
    outputs = classifier(x, num_classes)
    return k.Model(inputs, outputs, name="book_scratch")


def _mini_xception(image_size: int, num_classes: int, augmentation):
    k = keras()
    layers = k.layers
    inputs, x = _input_block(image_size, augmentation)
    x = layers.Rescaling(1.0 / 255, name="rescaling")(x)
    x = layers.Conv2D(32, 5, use_bias=False, name="entry_conv")(x)
    for i, size in enumerate((32, 64, 128, 256, 512), start=1):
        residual = x
        x = layers.BatchNormalization(name=f"block{i}_bn1")(x)
        x = layers.Activation("relu", name=f"block{i}_relu1")(x)
        x = layers.SeparableConv2D(size, 3, padding="same", use_bias=False, name=f"block{i}_sepconv1")(x)
        x = layers.BatchNormalization(name=f"block{i}_bn2")(x)
        x = layers.Activation("relu", name=f"block{i}_relu2")(x)
        x = layers.SeparableConv2D(size, 3, padding="same", use_bias=False, name=f"block{i}_sepconv2")(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{i}_pool")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same", use_bias=False,
                                 name=f"block{i}_residual")(residual)
        x = layers.Add(name=f"block{i}_add")([x, residual])
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    outputs = classifier(x, num_classes)
    return k.Model(inputs, outputs, name="mini_xception")


def build_head(feature_dim: int, num_classes: int, *, units: int = HEAD_UNITS,
               dropout: float = HEAD_DROPOUT, name: str = "head"):
    """The book's densely connected classifier on (pooled or flattened) base features:
    Dense(units, relu) → Dropout → classifier. Input: a vector of ``feature_dim`` floats."""
    k = keras()
    layers = k.layers
    inputs = k.Input(shape=(int(feature_dim),), name="features")
    x = layers.Dense(units, activation="relu", name="head_dense")(inputs)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = classifier(x, num_classes, name="head_predictions")
    return k.Model(inputs, outputs, name=name)


def pooling_layer(pooling: str, name: str = "features_pool"):
    """How the base's 4-D feature map becomes a vector: the book's Flatten or global average pooling."""
    layers = keras().layers
    if pooling == "flatten":
        return layers.Flatten(name=name)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=name)
    raise InvalidSetting(f"unknown head pooling '{pooling}'", f"choose one of: {', '.join(HEAD_POOLINGS)}")


def build_feature_extractor(base, pooling: str):
    """Frozen base + pooling: image (0..255) → feature vector, as cached by the features strategy."""
    k = keras()
    inputs = k.Input(shape=tuple(base.input.shape[1:]), name="image")
    x = base(inputs, training=False)
    x = pooling_layer(pooling)(x)
    return k.Model(inputs, x, name="feature_extractor")


def build_transfer_model(base, head, pooling: str, *, augmentation=None, name: str = "transfer"):
    """The full model: image (0..255) → [augmentation] → base → pooling → head.

    The base is called with ``training=False`` so its BatchNorm layers always run in inference
    mode, also when parts of it are unfrozen for fine-tuning (the book's / Keras's advice).
    """
    k = keras()
    inputs = k.Input(shape=tuple(base.input.shape[1:]), name="image")
    x = augmentation(inputs) if augmentation is not None else inputs
    x = base(x, training=False)
    x = pooling_layer(pooling)(x)
    outputs = head(x)
    return k.Model(inputs, outputs, name=name)


def feature_dim(base, pooling: str) -> int:
    shape = tuple(base.output.shape[1:])
    if pooling == "avg":
        return int(shape[-1])
    dim = 1
    for s in shape:
        dim *= int(s)
    return dim
