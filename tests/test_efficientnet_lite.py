"""EfficientNet-Lite0: architecture, exact weight mapping, ImageNet predictions, the conversion cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.bases import efficientnet_lite as eff
from engine.errors import ModelFileError

SAMPLES = Path(__file__).resolve().parent.parent / "resources" / "samples"
pytestmark = pytest.mark.skipif(eff.package_weights_path() is None, reason="efficientnet-lite0 package missing")


def _image(name, size=224):
    from engine.data.images import read_rgb
    from engine.predict import center_crop

    return center_crop(read_rgb(SAMPLES / name), size)[None].astype(np.float32)


def test_architecture_follows_keras_efficientnet_names():
    model = eff.build_architecture(include_top=True)
    names = [layer.name for layer in model.layers]
    assert model.name == "efficientnet_lite0"
    assert model.count_params() == 4_694_024
    for name in ("rescaling", "stem_conv", "stem_bn", "stem_activation", "block1a_dwconv", "block2a_expand_conv",
                 "block7a_project_bn", "top_conv", "top_bn", "top_activation", "avg_pool", "predictions"):
        assert name in names
    assert "block1a_expand_conv" not in names  # expand ratio 1: no expansion
    assert model.get_layer("top_activation").output.shape[1:] == (7, 7, 1280)
    assert len(eff.block_prefixes()) == 16


def test_every_file_weight_is_mapped_exactly_once():
    from engine.bases.torch_legacy import load_state_dict

    state = load_state_dict(eff.package_weights_path())
    mapped = [key for pairs in eff.weight_map().values() for key, _ in pairs]
    assert len(mapped) == len(set(mapped))
    assert set(mapped) == {k for k in state if not k.endswith("num_batches_tracked")}


def test_wrong_state_dict_is_refused():
    from engine.bases.torch_legacy import load_state_dict

    state = load_state_dict(eff.package_weights_path())
    del state["_blocks.3._project_conv.weight"]
    with pytest.raises(ModelFileError, match="_blocks.3._project_conv.weight"):
        eff.assign_torch_weights(eff.build_architecture(), state)


def test_cat_photo_top3_are_cat_classes(cached):
    model = eff.build(include_top=True)
    probs = np.asarray(model(_image("chelsea.jpg"), training=False))[0]
    top3 = np.argsort(probs)[::-1][:3]
    assert set(top3.tolist()) <= {281, 282, 283, 284, 285}
    assert probs.sum() == pytest.approx(1.0, abs=1e-4)


def test_coffee_photo_is_espresso(cached):
    model = eff.build(include_top=True)
    probs = np.asarray(model(_image("coffee.jpg"), training=False))[0]
    assert int(np.argmax(probs)) == 967
    assert probs[967] > 0.8


@pytest.mark.slow
def test_cached_model_gives_the_fresh_conversion_outputs(cached):
    import keras

    fresh = eff.convert()
    x = np.concatenate([_image("chelsea.jpg"), _image("rocket.jpg")])
    expected = np.asarray(fresh(x, training=False))
    from_cache = eff.build(include_top=True)
    np.testing.assert_allclose(np.asarray(from_cache(x, training=False)), expected, rtol=0, atol=1e-6)
    reloaded = keras.saving.load_model(cached / eff.CONVERTED_MODEL, safe_mode=True)
    np.testing.assert_allclose(np.asarray(reloaded(x, training=False)), expected, rtol=0, atol=1e-6)
    # the no-top weights give the same feature map as the full model's top_activation
    features = keras.Model(fresh.input, fresh.get_layer("top_activation").output)
    notop = eff.build(include_top=False)
    np.testing.assert_allclose(np.asarray(notop(x)), np.asarray(features(x)), rtol=0, atol=1e-5)


def test_conversion_happens_once(cached, monkeypatch):
    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again although the cache holds the model")

    monkeypatch.setattr(eff, "convert", no_conversion)
    model = eff.build(include_top=False, input_size=96)
    assert model.output.shape[1:] == (3, 3, 1280)


@pytest.mark.slow
def test_first_use_converts_into_the_user_cache(isolated_user_data):
    from engine.paths import models_cache_dir

    assert eff.find_converted() is None
    model_path, notop_path = eff.ensure_converted()
    assert model_path.parent == models_cache_dir() and model_path.is_file() and notop_path.is_file()
    assert eff.weights_status()[0] and "cached" in eff.weights_status()[1]


def test_bundled_copy_is_preferred(converted, tmp_path, monkeypatch):
    bundle = tmp_path / "resources"
    (bundle / "models").mkdir(parents=True)
    for path in converted:
        shutil.copy(path, bundle / "models" / path.name)
    monkeypatch.setattr(eff, "resources_dir", lambda: bundle)
    assert eff.find_converted() == (bundle / "models" / eff.CONVERTED_MODEL,
                                    bundle / "models" / eff.CONVERTED_NOTOP)
    assert eff.weights_status()[1].startswith("bundled")


@pytest.mark.slow
def test_damaged_cache_is_rebuilt(converted, isolated_user_data):
    from engine.paths import models_cache_dir

    cache = models_cache_dir()
    (cache / eff.CONVERTED_MODEL).write_bytes(b"garbage")
    shutil.copy(converted[1], cache / eff.CONVERTED_NOTOP)
    model = eff.build(include_top=True)
    probs = np.asarray(model(_image("coffee.jpg"), training=False))[0]
    assert int(np.argmax(probs)) == 967
