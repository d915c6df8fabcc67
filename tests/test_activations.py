"""Activations: one forward pass for all layers, the book's channel grid (all channels), statistics."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import IntrospectionError
from engine.tf_runtime import keras


def _model():
    k = keras()
    k.utils.set_random_seed(0)
    base = k.Sequential(
        [k.Input((16, 16, 3)), k.layers.Rescaling(1 / 255.0), k.layers.Conv2D(5, 3, activation="relu", name="c1"),
         k.layers.Conv2D(7, 3, activation="relu", name="c2")],
        name="base",
    )
    return k.Sequential([k.Input((16, 16, 3)), base, k.layers.Flatten(name="flat"), k.layers.Dense(2, activation="softmax")])


def test_compute_activations_of_several_layers_in_one_pass():
    from engine.inspect import activations

    model = _model()
    image = np.random.default_rng(0).uniform(0, 255, (16, 16, 3)).astype("float32")
    result = activations.compute_activations(model, image, ["base/c1", "c2", "flat"])
    assert list(result) == ["base/c1", "c2", "flat"]
    assert result["base/c1"].shape == (14, 14, 5) and result["c2"].shape == (12, 12, 7)
    base = model.layers[0]
    k = keras()
    ref = k.Model(base.inputs[0], [base.get_layer("c1").output, base.get_layer("c2").output])(image[None])
    np.testing.assert_allclose(result["base/c1"], np.asarray(ref[0])[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["c2"], np.asarray(ref[1])[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["flat"], np.asarray(ref[1])[0].ravel(), rtol=1e-5, atol=1e-6)
    # one compiled forward pass serves all three layers, and is reused
    forward = activations._activation_function(model, ("base/c1", "base/c2", "flat"))
    activations.compute_activations(model, image * 0.5, ["base/c1", "c2", "flat"])
    assert forward.experimental_get_tracing_count() == 1


def test_channel_grid_shows_every_channel_and_pads_the_last_row():
    from engine.inspect.activations import channel_grid

    rng = np.random.default_rng(1)
    act = rng.normal(size=(6, 5, 7)).astype("float32")  # 7 channels, 3 per row → 3 rows, last has 1
    act[..., 6] = 0.0
    act[2, 3, 6] = 4.0  # the last channel's one bright pixel must be in the grid
    grid = channel_grid(act, images_per_row=3)
    assert grid.shape == (3 * 6, 3 * 5) and grid.dtype == np.uint8
    last = grid[12:18, 0:5]
    assert last[2, 3] == 255 and np.all(np.delete(last.ravel(), 2 * 5 + 3) < 128)
    assert np.all(grid[12:18, 5:] == 0)  # padding
    c = act[..., 1]
    expected = np.clip((c - c.mean()) / (c.std() + 1e-5) * 64 + 128, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(grid[0:6, 5:10], expected)
    with_margin = channel_grid(act[None], images_per_row=4, margin=2)
    assert with_margin.shape == (2 * 6 + 2, 4 * 5 + 3 * 2)
    with pytest.raises(IntrospectionError, match="feature map"):
        channel_grid(np.zeros((1, 10)))


def test_channel_stats():
    from engine.inspect.activations import channel_stats

    act = np.zeros((4, 4, 4), np.float32)
    act[..., 0] = 1.0
    act[0, 0, 1] = 8.0
    stats = channel_stats(act)
    assert stats["channels"] == 4
    assert stats["zero_channels"] == 2 and stats["zero_fraction"] == pytest.approx(0.5)
    assert stats["per_channel_mean"] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert stats["per_channel_max"] == pytest.approx([1.0, 8.0, 0.0, 0.0])
    assert stats["max"] == 8.0 and stats["mean"] == pytest.approx(1.5 / 4)
