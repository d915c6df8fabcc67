"""Prediction: ImageNet photos, sigmoid and softmax heads of trained models, unreadable images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.bases import efficientnet_lite as eff
from engine.errors import DatasetError
from engine.models.loading import load_model
from engine.predict import center_crop, predict_images, to_probabilities

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "resources" / "samples"
DEMO = ROOT / "resources" / "demo"


@pytest.fixture(scope="module")
def imagenet_model(converted_home):
    with pytest.MonkeyPatch.context() as patch:  # the session's conversion, not one of its own
        patch.setenv("CONVSCOPE_HOME", str(converted_home))
        return load_model("efficientnet-lite0")


@pytest.mark.skipif(eff.package_weights_path() is None, reason="efficientnet-lite0 package missing")
def test_sample_photos_get_their_imagenet_classes(imagenet_model):
    assert imagenet_model.kind == "imagenet" and imagenet_model.input_size == 224
    results = predict_images(imagenet_model, [SAMPLES / "chelsea.jpg", SAMPLES / "coffee.jpg"], top_k=3)
    cat, coffee = results
    assert cat.path.endswith("chelsea.jpg")
    assert {index for index, _, _ in cat.top} <= {281, 282, 283, 284, 285}
    assert coffee.top[0][:2] == (967, "espresso") and coffee.top[0][2] > 0.8
    assert [p for _, _, p in cat.top] == sorted((p for _, _, p in cat.top), reverse=True)


def test_unreadable_image_names_the_file(imagenet_model, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DatasetError, match=r"broken\.jpg"):
        predict_images(imagenet_model, [SAMPLES / "coffee.jpg", broken])


def _constant_sigmoid_run(tmp_path, bias):
    import keras

    inputs = keras.Input((28, 28, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros",
                                 bias_initializer=keras.initializers.Constant(bias))(x)
    run = tmp_path / "run"
    run.mkdir()
    keras.Model(inputs, outputs).save(run / "best.keras")
    (run / "config.json").write_text(json.dumps({"classes": ["coat", "pullover"], "image_size": 28}))
    return run


def test_sigmoid_head_reports_both_classes(tmp_path):
    run = _constant_sigmoid_run(tmp_path, bias=1.0)  # p(pullover) = sigmoid(1) = 0.731
    image = next((DEMO / "fashion5" / "bag").glob("*.png"))
    (result,) = predict_images(load_model(run), [image], top_k=5)
    assert [name for _, name, _ in result.top] == ["pullover", "coat"]
    assert result.top[0][2] == pytest.approx(1 / (1 + np.exp(-1.0)), abs=1e-6)
    assert result.top[1][2] == pytest.approx(1 - result.top[0][2], abs=1e-6)


def test_logits_become_probabilities():
    probs = to_probabilities(np.array([[2.0, 0.0, -1.0]]))
    assert probs.sum() == pytest.approx(1.0) and np.argmax(probs) == 0
    already = np.array([[0.2, 0.5, 0.3]])
    np.testing.assert_array_equal(to_probabilities(already), already)


def test_center_crop_keeps_the_middle():
    pixels = np.zeros((100, 300, 3), np.uint8)
    pixels[:, :100] = 255  # a white left third that the crop must cut away
    crop = center_crop(pixels, 64)
    assert crop.shape == (64, 64, 3)
    assert crop.max() == 0
