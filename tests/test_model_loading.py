"""Safe model loading: every bad file gives a clear error naming it; code-carrying models are refused."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ModelFileError, UnsafeModelError
from engine.models.loading import LoadedModel, load_model, unsafe_parts


def _tiny_model(units=3, size=16):
    import keras

    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(units, activation="softmax" if units > 1 else "sigmoid")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture()
def good_file(tmp_path):
    path = tmp_path / "good.keras"
    _tiny_model().save(path)
    return path


def _rewrite_member(source: Path, target: Path, member: str, edit):
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == member:
                data = json.dumps(edit(json.loads(data))).encode()
            dst.writestr(item, data)
    return target


def test_a_plain_keras_file_loads(good_file):
    loaded = load_model(good_file)
    assert isinstance(loaded, LoadedModel)
    assert loaded.kind == "file" and loaded.input_size == 16 and loaded.class_names is None
    assert loaded.model(np.zeros((1, 16, 16, 3), np.float32)).shape == (1, 3)


def test_lambda_layer_is_refused_without_running_it(tmp_path):
    import keras

    marker = tmp_path / "ran"
    marker_name = str(marker)
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda x: (open(marker_name, "w").close(), x * 2)[1])(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink()  # building the model above called the lambda once
    with pytest.raises(UnsafeModelError) as info:
        load_model(path)
    text = str(info.value)
    assert "lambda.keras" in text and "Lambda" in text and "--trust-model" in text
    assert not marker.exists()
    trusted = load_model(path, trust=True)
    assert marker.exists()  # loading does run the stored code: exactly what the refusal prevents
    np.testing.assert_allclose(np.asarray(trusted.model(np.ones((1, 4), np.float32))), 2.0)


def test_custom_objects_are_refused(tmp_path, good_file):
    def add_custom(config):
        layers = config["config"]["layers"]
        layers[2]["module"] = "evil_package.layers"
        layers[2]["registered_name"] = "Evil>Conv"
        return config

    path = _rewrite_member(good_file, tmp_path / "custom.keras", "config.json", add_custom)
    with pytest.raises(UnsafeModelError, match="custom object.*evil_package"):
        load_model(path)


def test_unsafe_parts_finds_nested_code():
    config = {"config": {"layers": [{"class_name": "Sequential", "module": "keras", "config": {
        "layers": [{"class_name": "Lambda", "module": "keras.layers", "config": {}}]}}]}}
    assert unsafe_parts(config) == ["a Lambda layer"]
    assert unsafe_parts({"class_name": "Dense", "module": "keras.layers"}) == []


def test_not_a_zip_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("just some text")
    with pytest.raises(ModelFileError, match=r"notes\.keras: not a Keras model file.*zip"):
        load_model(path)


def test_truncated_file_is_a_clear_error(tmp_path, good_file):
    path = tmp_path / "cut.keras"
    path.write_bytes(good_file.read_bytes()[: good_file.stat().st_size // 2])
    with pytest.raises(ModelFileError, match=r"cut\.keras: damaged or truncated"):
        load_model(path)


def test_weights_only_h5_is_explained(tmp_path):
    path = tmp_path / "only.weights.h5"
    _tiny_model().save_weights(path)
    with pytest.raises(ModelFileError, match=r"only\.weights\.h5: a weights-only file.*full \.keras model"):
        load_model(path)


def test_newer_keras_file_says_to_upgrade(tmp_path, good_file):
    path = _rewrite_member(good_file, tmp_path / "future.keras", "metadata.json",
                           lambda meta: {**meta, "keras_version": "99.1.0"})
    with pytest.raises(ModelFileError, match=r"future\.keras: saved by Keras 99\.1\.0.*upgrade Keras"):
        load_model(path)


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(ModelFileError, match=r"nowhere\.keras: file not found"):
        load_model(tmp_path / "nowhere.keras")
    with pytest.raises(ModelFileError, match="neither a model file"):
        load_model("no-such-base")
    with pytest.raises(ModelFileError, match="no ImageNet classifier head"):
        load_model("vgg16-edges")


def _run_dir(tmp_path, classes, files=("best.keras",), units=None, **config):
    run = tmp_path / "run"
    run.mkdir()
    model = _tiny_model(units or (1 if len(classes) == 2 else len(classes)), size=16)
    for name in files:
        model.save(run / name)
    (run / "config.json").write_text(json.dumps({"classes": classes, "image_size": 16, **config}))
    return run


def test_run_folder_uses_best_then_last_with_its_classes(tmp_path):
    run = _run_dir(tmp_path, ["coat", "pullover"], files=("last.keras",))
    loaded = load_model(run)
    assert loaded.kind == "run" and loaded.class_names == ["coat", "pullover"] and loaded.input_size == 16
    assert "last.keras" in loaded.label


def test_run_folder_config_cannot_point_outside(tmp_path):
    run = _run_dir(tmp_path, ["a", "b", "c"], model="../elsewhere/best.keras")
    with pytest.raises(ModelFileError, match=r"config\.json: 'model' points outside the run folder"):
        load_model(run)


def test_run_folder_model_symlinked_outside_is_refused(tmp_path, good_file):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"classes": ["a", "b", "c"], "image_size": 16}))
    (run / "best.keras").symlink_to(good_file)
    with pytest.raises(ModelFileError, match="outside the run folder"):
        load_model(run)


def test_run_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelFileError, match="not a ConvScope run folder"):
        load_model(empty)
    run = _run_dir(tmp_path, ["a", "b", "c"], files=())
    with pytest.raises(ModelFileError, match="no saved model"):
        load_model(run)
    (run / "best.keras").unlink(missing_ok=True)
    _tiny_model(5).save(run / "best.keras")
    with pytest.raises(ModelFileError, match="5 outputs but config.json lists 3 classes"):
        load_model(run)
