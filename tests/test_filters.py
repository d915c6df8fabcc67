"""Filter patterns: gradient ascent works, batching changes nothing, progress, cancel, gallery."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import IntrospectionError, InvalidSetting
from engine.events import CancelToken, JobCancelled, PartialResult, Progress
from engine.tf_runtime import keras

SIZE = 24


def _model(seed=3):
    """The book's shape with a free input size: a small conv base nested in a Sequential."""
    k = keras()
    k.utils.set_random_seed(seed)
    base = k.Sequential(
        [
            k.Input((None, None, 3)),
            k.layers.Rescaling(1 / 127.5, offset=-1.0),
            k.layers.Conv2D(8, 3, activation="relu", name="conv1"),
            k.layers.MaxPooling2D(name="pool1"),
            k.layers.Conv2D(12, 3, name="conv2"),  # linear: no filter is dead on grey noise
        ],
        name="tiny_base",
    )
    model = k.Sequential(
        [k.Input((None, None, 3)), base, k.layers.GlobalAveragePooling2D(), k.layers.Dense(1, activation="sigmoid")],
        name="book",
    )
    return model


def test_patterns_activate_their_filter_far_more_than_the_start_noise():
    from engine.inspect.filters import FilterConfig, generate_patterns

    model = _model()
    # the model rescales 0..255 to -1..1, so a step of 1.0 pixel is small; 5.0 reaches the regime
    # the book's step of 1.0 has on VGG16's caffe-preprocessed (unscaled) input
    config = FilterConfig(layer="tiny_base/conv2", first=2, count=5, step_size=5.0, image_size=SIZE)
    result = generate_patterns(model, config)
    assert result.filter_indices == [2, 3, 4, 5, 6]
    assert result.patterns.shape == (5, SIZE, SIZE, 3) and result.patterns.dtype == np.uint8
    # the engine's own measurements, checked against an independent forward pass
    k = keras()
    base = model.layers[0]
    feature = k.Model(base.inputs[0], base.get_layer("conv2").output)
    acts = np.asarray(feature(result.images))
    own = np.array([acts[i, :, :, f].mean() for i, f in enumerate(result.filter_indices)])
    np.testing.assert_allclose(result.final_activation, own, rtol=1e-4, atol=1e-6)
    assert np.all(result.final_activation > result.start_activation)
    assert np.median(result.final_activation) > 10 * np.median(np.abs(result.start_activation))
    # each pattern is specific: filter f's image excites filter f more than the other images do
    for i, f in enumerate(result.filter_indices):
        others = [acts[j, :, :, f].mean() for j in range(len(result.filter_indices)) if j != i]
        assert acts[i, :, :, f].mean() > max(others)


def test_batched_equals_one_filter_at_a_time():
    """Same seed → same start noise per filter; each image's gradient is normalised by its own RMS.
    Only the convolution's summation order may differ with the batch size (oneDNN picks kernels
    per shape): float32 rounding ~1e-7 relative per step, which 20 normalised steps of size 1.0
    can grow to ~1e-4 of the 0..255 image scale. We allow 1e-2 (pixel units) on the raw images
    — far below the ~20 units the ascent moves them — and exact-or-one-level on the uint8 patterns."""
    from engine.inspect.filters import FilterConfig, generate_patterns

    model = _model()
    batched = generate_patterns(model, FilterConfig("tiny_base/conv2", first=0, count=6, steps=20,
                                                     image_size=SIZE, batch_size=6, seed=7))
    single = generate_patterns(model, FilterConfig("tiny_base/conv2", first=0, count=6, steps=20,
                                                    image_size=SIZE, batch_size=1, seed=7))
    moved = np.abs(batched.images - 138).mean()
    assert moved > 5
    np.testing.assert_allclose(batched.images, single.images, atol=1e-2)
    assert np.abs(batched.patterns.astype(int) - single.patterns.astype(int)).max() <= 1
    other_seed = generate_patterns(model, FilterConfig("tiny_base/conv2", first=0, count=6, steps=20,
                                                        image_size=SIZE, batch_size=6, seed=8))
    assert np.abs(other_seed.images - batched.images).mean() > 1.0


def test_bfloat16_patterns_match_float32():
    from engine.inspect.filters import FilterConfig, generate_patterns

    model = _model()
    base = dict(layer="tiny_base/conv2", count=4, steps=20, step_size=5.0, image_size=SIZE)
    f32 = generate_patterns(model, FilterConfig(**base))
    bf16 = generate_patterns(model, FilterConfig(**base, precision="bfloat16"))
    for a, b in zip(f32.images, bf16.images):
        da, db = (a - a.mean()).ravel(), (b - b.mean()).ravel()
        assert np.dot(da, db) / np.linalg.norm(da) / np.linalg.norm(db) > 0.95
    np.testing.assert_allclose(bf16.final_activation, f32.final_activation, rtol=0.05, atol=0.02)


def test_progress_partial_results_cancel_and_gallery():
    from engine.inspect.filters import FilterConfig, generate_patterns

    model = _model()
    events = []
    config = FilterConfig("conv1", count=5, steps=3, image_size=SIZE, batch_size=2, images_per_row=2, margin=5)
    result = generate_patterns(model, config, emit=events.append)
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.done for p in progress] == list(range(1, 10)) and progress[-1].total == 9  # 3 batches × 3 steps
    partial = [e for e in events if isinstance(e, PartialResult)]
    assert [p.key for p in partial] == [f"tiny_base/conv1:{i}" for i in range(5)]
    assert result.layer == "tiny_base/conv1"  # the bare name resolved inside the nested base
    # 5 patterns, 2 per row → 3 rows, last row padded with black
    assert result.gallery.shape == (3 * SIZE + 2 * 5, 2 * SIZE + 5, 3)
    np.testing.assert_array_equal(result.gallery[:SIZE, :SIZE], result.patterns[0])
    np.testing.assert_array_equal(result.gallery[-SIZE:, :SIZE], result.patterns[4])
    assert result.gallery[-SIZE:, SIZE + 5 :].max() == 0
    assert result.gallery[SIZE : SIZE + 5].max() == 0  # margin

    token = CancelToken()

    def cancel_after_two(event):
        if isinstance(event, Progress) and event.done == 2:
            token.cancel()

    with pytest.raises(JobCancelled):
        generate_patterns(model, FilterConfig("conv1", count=2, steps=10, image_size=SIZE),
                          emit=cancel_after_two, cancel=token)


def test_deprocess_is_the_books():
    from engine.inspect.filters import deprocess

    x = np.array([[[0.0, 1.0, 2.0]]] * 2)
    out = deprocess(x)
    z = (x - x.mean()) / (x.std() + 1e-5)
    expected = np.clip(z * 0.1 + 0.5, 0, 1) * 255
    np.testing.assert_array_equal(out, expected.astype(np.uint8))


def test_guard_rails():
    from engine.inspect.filters import FilterConfig, generate_patterns

    model = _model()
    with pytest.raises(IntrospectionError, match="has 12 filters; filter 12"):
        generate_patterns(model, FilterConfig("conv2", first=12, image_size=SIZE))
    with pytest.raises(IntrospectionError, match="not filters over an image"):
        generate_patterns(model, FilterConfig(model.layers[-1].name, image_size=SIZE))
    with pytest.raises(InvalidSetting, match="steps"):
        generate_patterns(model, FilterConfig("conv2", steps=0))
    k = keras()
    fixed = k.Sequential([k.Input((32, 32, 3)), k.layers.Conv2D(2, 3, name="c")])
    with pytest.raises(IntrospectionError, match="only takes 32×32 images"):
        generate_patterns(fixed, FilterConfig("c", image_size=48))
    assert generate_patterns(fixed, FilterConfig("c", steps=2)).patterns.shape == (2, 32, 32, 3)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_only_the_model_up_to_the_layer_is_computed(precision):
    """The ascent runs a truncated model: nothing after the chosen layer (later convolutions, the
    head) is in its graph; its output is the layer's own output (bfloat16 within rounding)."""
    from engine.inspect.filters import _feature_model, model_layers

    model = _model()
    truncated = _feature_model(model, "tiny_base/conv1", precision)
    names = [layer.name for layer in model_layers(truncated)]
    assert "conv1" in names and "conv2" not in names and "pool1" not in names
    assert not any(name.startswith(("dense", "global")) for name in names)
    k = keras()
    base = model.layers[0]
    reference = k.Model(base.inputs[0], base.get_layer("conv1").output)
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    got = np.asarray(truncated(x), dtype=np.float32)
    np.testing.assert_allclose(got, np.asarray(reference(x)), rtol=1e-5 if precision == "float32" else 2e-2,
                               atol=1e-5 if precision == "float32" else 2e-2)
    if precision == "bfloat16":  # the convolutions compute in bfloat16, the raw-pixel rescaling does not
        deep = _feature_model(model, "tiny_base/conv2", precision)
        policies = {layer.name: layer.dtype_policy.name for layer in model_layers(deep)}
        assert policies["conv1"] == policies["conv2"] == "mixed_bfloat16"
        rescaling = [name for name in policies if name.startswith("rescaling")]
        assert rescaling and all(policies[name] == "float32" for name in rescaling)


@pytest.mark.parametrize("options", [dict(strides=2, padding="same", activation="relu"),
                                     dict(dilation_rate=2, padding="valid", activation="tanh"),
                                     dict(padding="same", use_bias=False)])
def test_one_filter_per_image_equals_the_layer_s_own_output(options):
    # The ascent computes only each image's own filter of a Conv2D; it must be that filter's output.
    from engine.inspect.filters import _one_filter_per_image

    k = keras()
    k.utils.set_random_seed(0)
    conv = k.layers.Conv2D(7, 3, bias_initializer="random_normal", **options)
    images = np.random.default_rng(1).normal(size=(4, 13, 13, 5)).astype("float32")
    full = np.asarray(conv(images))
    indices = np.array([6, 0, 3, 3], np.int32)
    picked = np.asarray(_one_filter_per_image(conv, images, indices))
    expected = np.stack([full[i, :, :, f] for i, f in enumerate(indices)])
    np.testing.assert_allclose(picked, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("flags, expected", [({"fpu", "avx2", "amx_bf16", "amx_tile"}, "bfloat16"),
                                             ({"fpu", "avx512f", "avx512_bf16"}, "bfloat16"),
                                             ({"fpu", "avx2", "avx512f"}, "float32"),
                                             (set(), "float32")])
def test_auto_precision_uses_bfloat16_only_where_the_cpu_has_bfloat16_units(monkeypatch, flags, expected):
    from engine import precision
    from engine.inspect import filters

    monkeypatch.setattr(precision, "this_cpu_flags", lambda: frozenset(flags))
    assert filters.resolve_precision("auto") == expected
    assert filters.resolve_precision("float32") == "float32"  # an explicit choice is kept
    result = filters.generate_patterns(_model(), filters.FilterConfig(layer="tiny_base/conv2", count=2, steps=2,
                                                                      image_size=16, precision="auto"))
    assert result.precision == expected and result.patterns.shape == (2, 16, 16, 3)
