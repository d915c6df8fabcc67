"""A tiny "pretrained" convolutional base for fast training tests (two conv layers, fixed seed).

``register()`` adds it to the base registry as ``tiny-base``; subprocess tests import this module
(``PYTHONPATH=tests``) and call ``register()`` before running the CLI.
"""

from __future__ import annotations

import pytest

from engine.bases.registry import BaseSpec, WeightsStatus, get_base, register_base, unregister_base

NAME = "tiny-base"


def build_tiny_base(include_top: bool = False, input_size: int | None = None):
    from models import pretrained_like_base

    return pretrained_like_base("tiny_base", input_size or 32, seed=7, first_pool=2,
                                preprocess=lambda k: k.layers.Rescaling(1.0 / 255, name="rescaling"))


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
