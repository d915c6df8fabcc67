"""Export with bad input: every case ends in one ConvScopeError naming the setting or file, and no
half-written export is ever left under the destination's name."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from imagegen import make_shapes_dataset

from engine.errors import DiskFullError, ExportError, InvalidSetting, ModelFileError, ParityError
from engine.export import card as model_card
from engine.export import litert
from engine.export.job import ExportConfig, run


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A tiny softmax .keras model (3 classes) and a folder of class folders to check it on."""
    from engine.tf_runtime import keras

    k = keras()
    root = tmp_path_factory.mktemp("robust")
    inputs = k.Input((32, 32, 3), name="image")
    x = k.layers.Rescaling(1 / 255)(inputs)
    x = k.layers.Conv2D(4, 3, activation="relu")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    model = k.Model(inputs, k.layers.Dense(3, activation="softmax")(x), name="small")
    path = root / "small.keras"
    model.save(path)
    images = make_shapes_dataset(root / "images", per_class=3, size=32, classes=("circle", "square", "triangle"))
    return path, images


def _leftovers(folder: Path, name: str) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(f".{name}.")]


def _refused_leaving_nothing(tmp_path: Path, error: type[Exception], match: str, **settings) -> None:
    """Exporting with ``settings`` into ``tmp_path/out`` raises ``error`` (message matching ``match``)
    and leaves neither the destination nor a temporary beside it."""
    with pytest.raises(error, match=match):
        run(ExportConfig(out=str(tmp_path / "out"), **settings))
    assert not (tmp_path / "out").exists() and _leftovers(tmp_path, "out") == []


@pytest.mark.parametrize("settings, expected", [
    ({"format": "tflite"}, "unknown export format 'tflite'"),
    ({"format": "litert", "quantize": "int4"}, "unknown quantization 'int4'"),
    ({"format": "savedmodel", "quantize": "int8"}, "format 'savedmodel' has no 'int8' quantization"),
    ({"format": "keras", "quantize": "float16"}, "format 'keras' has no 'float16' quantization"),
    ({"format": "litert", "out": "{tmp}/model.tflite"}, "names a file"),
    ({"format": "onnx", "max_images": 0}, "--max-images 0"),
])
def test_bad_settings_are_refused_before_anything_is_written(settings, expected, small, tmp_path):
    path, images = small
    out = str(settings.pop("out", "{tmp}/out")).format(tmp=tmp_path)
    with pytest.raises(InvalidSetting, match=expected):
        run(ExportConfig(model=str(path), out=out, images=str(images), **settings))
    assert list(tmp_path.iterdir()) == []


def test_a_model_file_without_images_asks_for_them(small, tmp_path):
    path, _ = small
    with pytest.raises(InvalidSetting, match="--images"):
        run(ExportConfig(model=str(path), format="litert", out=str(tmp_path / "out")))


def test_a_run_without_a_model_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"classes": ["a", "b"], "image_size": 32}))
    _refused_leaving_nothing(tmp_path, ModelFileError, "no saved model", model=str(run_dir), format="onnx")


def test_existing_destination_is_refused_then_replaced_only_with_force(small, tmp_path):
    path, images = small
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(InvalidSetting, match="already exists.*--force"):
        run(ExportConfig(model=str(path), format="keras", out=str(out), images=str(images)))
    assert (out / "mine.txt").read_text() == "keep"
    result = run(ExportConfig(model=str(path), format="keras", out=str(out), images=str(images), force=True))
    assert Path(result.artifact).is_file() and not (out / "mine.txt").exists()
    assert _leftovers(tmp_path, "out") == []


def test_disk_full_leaves_no_export_under_the_final_name(small, tmp_path, monkeypatch):
    """ENOSPC while the model card is written (the artifact is already in the staging folder)."""
    path, images = small
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous export")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(model_card, "write", full)
    with pytest.raises(DiskFullError, match="disk full.*out"):
        run(ExportConfig(model=str(path), format="litert", out=str(out), images=str(images), force=True))
    assert [p.name for p in out.iterdir()] == ["old.txt"]  # the previous export is untouched
    assert _leftovers(tmp_path, "out") == []
    with pytest.raises(DiskFullError):
        run(ExportConfig(model=str(path), format="onnx", out=str(tmp_path / "new"), images=str(images)))
    assert not (tmp_path / "new").exists() and _leftovers(tmp_path, "new") == []


def test_parity_failure_keeps_the_export_as_failed_and_says_by_how_much(small, tmp_path, monkeypatch):
    path, images = small
    real_load = litert.load

    def drifting(artifact):
        predict = real_load(artifact)
        return lambda x: predict(x) + 3e-3

    monkeypatch.setattr(litert, "load", drifting)
    with pytest.raises(ParityError, match=r"max abs diff 0\.003.*max abs diff <= 0\.0001") as caught:
        run(ExportConfig(model=str(path), format="litert", out=str(tmp_path / "out"), images=str(images)))
    assert not (tmp_path / "out").exists()
    failed = tmp_path / "out.failed"
    assert (failed / "model.tflite").is_file()
    card = json.loads((failed / "model_card.json").read_text())
    assert card["parity"]["passed"] is False and card["parity"]["max_abs_diff"] == pytest.approx(3e-3, rel=0.1)
    assert caught.value.result.path == str(failed)


def test_unlabelled_images_check_agreement(small, tmp_path):
    path, images = small
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, file in enumerate(sorted(images.rglob("*.png"))):
        (flat / f"{i}.png").write_bytes(file.read_bytes())
    result = run(ExportConfig(model=str(path), format="onnx", out=str(tmp_path / "out"), images=str(flat)))
    assert result.parity["keras_accuracy"] is None and result.parity["images"] == 9
    assert "unlabelled" in result.parity["source"]


def _register_odd_layer():
    from engine.tf_runtime import keras

    k = keras()

    @k.saving.register_keras_serializable(package="convscope_tests")
    class SingularValues(k.layers.Layer):
        """Singular values of 4x4 blocks: an op (Svd) neither LiteRT nor ONNX has."""

        def call(self, x):
            blocks = k.ops.reshape(x, (-1, 4, 4))
            return k.ops.reshape(k.ops.linalg.svd(blocks, compute_uv=False), (-1, 4))

    return SingularValues


@pytest.mark.parametrize("fmt, label", [("litert", "LiteRT"), ("onnx", "ONNX")])
def test_a_layer_the_format_cannot_express_is_named(fmt, label, tmp_path):
    from engine.tf_runtime import keras

    k = keras()
    odd = _register_odd_layer()
    inputs = k.Input((8, 8, 3), name="image")
    x = k.layers.Conv2D(1, 1, name="conv")(inputs)
    x = odd(name="singular_values")(k.layers.Reshape((64,))(x))
    model = k.Model(inputs, k.layers.Dense(2, activation="softmax")(k.layers.Flatten()(x)))
    path = tmp_path / "odd.keras"
    model.save(path)
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "a.png")
    _refused_leaving_nothing(tmp_path, ExportError,
                             rf"{label} cannot express this model: layer singular_values \(SingularValues\) uses Svd",
                             model=str(path), format=fmt, images=str(images), trust=True)


def test_a_model_that_does_not_take_rgb_images_is_refused(tmp_path):
    from engine.tf_runtime import keras

    k = keras()
    inputs = k.Input((8, 8, 1), name="grey")
    model = k.Model(inputs, k.layers.Dense(2, activation="softmax")(k.layers.Flatten()(inputs)))
    model.save(tmp_path / "grey.keras")
    _refused_leaving_nothing(tmp_path, ModelFileError, r"input \(None, 8, 8, 1\) is not a fixed-size RGB image",
                             model=str(tmp_path / "grey.keras"), format="onnx", images=str(tmp_path))


def test_unreadable_check_images_are_skipped_and_none_readable_is_an_error(small, tmp_path):
    from engine.errors import DatasetError

    path, images = small
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_text("not an image")
    _refused_leaving_nothing(tmp_path, DatasetError, "none of the images .* could be read",
                             model=str(path), format="keras", images=str(broken))
    (broken / "b.png").write_bytes(next(images.rglob("*.png")).read_bytes())
    warnings = []
    result = run(ExportConfig(model=str(path), format="keras", out=str(tmp_path / "out"), images=str(broken)),
                 emit=lambda event: warnings.append(getattr(event, "message", "")))
    assert result.parity["images"] == 1 and any("skipped" in w and "a.png" in w for w in warnings)
