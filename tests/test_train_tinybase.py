"""A tiny "pretrained" convolutional base for fast training tests (two conv layers, fixed seed).

``register()`` adds it to the base registry as ``tiny-base``; subprocess tests import this module
(``PYTHONPATH=tests``) and call ``register()`` before running the CLI.
"""

from __future__ import annotations

import pytest

from engine.bases.registry import BaseSpec, WeightsStatus, get_base, register_base, unregister_base

NAME = "tiny-base"


def build_tiny_base(include_top: bool = False, input_size: int | None = None):
    from engine.tf_runtime import keras

    k = keras()
    size = input_size or 32
    init = k.initializers.GlorotUniform(seed=7)
    inputs = k.Input(shape=(size, size, 3), name="input_layer")
    x = k.layers.Rescaling(1.0 / 255, name="rescaling")(inputs)
    x = k.layers.Conv2D(8, 3, activation="relu", padding="same", kernel_initializer=init, name="conv1")(x)
    x = k.layers.BatchNormalization(name="bn1")(x)
    x = k.layers.MaxPooling2D(2, name="pool1")(x)
    x = k.layers.Conv2D(8, 3, activation="relu", padding="same", kernel_initializer=init, name="conv2")(x)
    x = k.layers.MaxPooling2D(4, name="pool2")(x)
    return k.Model(inputs, x, name="tiny_base")


def register() -> None:
    register_base(BaseSpec(
        name=NAME, label="tiny test base (random, fixed seed)", builder="test_train_tinybase:build_tiny_base",
        input_size=32, min_input_size=32, last_conv_layer="conv2", finetune_from="conv2",
        weights_source="test fixture", weights_status=lambda: WeightsStatus(True, "fixed seed 7"),
    ))


def test_tiny_base_is_deterministic_and_four_dimensional():
    import numpy as np

    register()
    try:
        spec = get_base(NAME)
        a, b = spec.build(input_size=32), spec.build(input_size=32)
        x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
        np.testing.assert_allclose(a(x), b(x), rtol=1e-5)
        assert len(a.output.shape) == 4
    finally:
        unregister_base(NAME)


@pytest.fixture
def tiny_base():
    register()
    yield NAME
    unregister_base(NAME)
