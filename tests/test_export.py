"""Export to SavedModel, LiteRT, ONNX and .keras: every kind of model ConvScope trains, checked in the
format's own runtime against the Keras model; the model card names the classes in output order; the
artifact runs with augmentation off; the card's usage snippet runs as written."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

import export_models

from engine.export.job import ExportConfig, run
from engine.export.registry import get_format
from engine.train import rundir

pytestmark = pytest.mark.slow

FORMATS = ("savedmodel", "litert", "onnx", "keras")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    export_models.register()
    try:
        yield export_models.train_runs(tmp_path_factory.mktemp("export_runs"))
    finally:
        export_models.unregister()


@pytest.fixture(scope="module")
def exports(runs, tmp_path_factory):
    """Every kind exported to every format once (the module's tests read these folders)."""
    root = tmp_path_factory.mktemp("exports")
    return {(kind, fmt): run(ExportConfig(model=str(path), format=fmt, out=str(root / f"{kind}-{fmt}")))
            for kind, path in runs.items() for fmt in FORMATS}


def _test_images(run_dir: Path, count: int = 4) -> np.ndarray:
    from engine.data.images import read_rgb_resized
    from engine.data.split import load_split

    items = load_split(run_dir / rundir.SPLIT).test[:count]
    return np.stack([read_rgb_resized(path, 48) for path, _ in items]).astype("float32")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", export_models.KINDS)
def test_export_matches_keras_and_the_card_names_classes_in_order(kind, fmt, runs, exports):
    result = exports[(kind, fmt)]
    parity = result.parity
    assert parity["passed"] and parity["max_abs_diff"] <= 1e-4 and parity["top1_agreement"] == 1.0
    test_count = len((runs[kind] / rundir.SPLIT / "test.txt").read_text().splitlines())
    assert parity["images"] == test_count
    assert parity["keras_accuracy"] == parity["export_accuracy"]
    card = json.loads(Path(result.card).read_text())
    classes = rundir.read_config(runs[kind])["classes"]
    assert card["class_names"] == classes
    assert card["output"]["kind"] == ("softmax" if len(classes) > 2 else "sigmoid")
    assert card["input"]["shape"] == [None, 48, 48, 3] and "0..255" in card["input"]["pixels"]
    assert card["parity"] == parity and card["manifest"]["dataset"]["fingerprint"]
    markdown = (Path(result.path) / "model_card.md").read_text()
    assert "\n".join(f"{i}. {name}" for i, name in enumerate(classes)) in markdown
    assert not any(p.name.startswith(".") for p in Path(result.path).iterdir())  # no scratch left inside


@pytest.mark.parametrize("fmt", FORMATS)
def test_artifact_runs_with_augmentation_off(fmt, runs, exports):
    """The book's augmentation is inside the model: the artifact must not apply it (two identical
    calls give identical outputs, equal to Keras in inference mode)."""
    from engine.models.loading import load_model

    result = exports[("scratch-aug", fmt)]
    predict = get_format(fmt).implementation().load(Path(result.artifact))
    images = _test_images(runs["scratch-aug"])
    first, second = predict(images), predict(images)
    np.testing.assert_array_equal(first, second)
    keras_model = load_model(str(runs["scratch-aug"])).model
    np.testing.assert_allclose(first, np.asarray(keras_model(images, training=False)), atol=1e-5)
    assert not np.allclose(first, np.asarray(keras_model(images, training=True)), atol=1e-5)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_cards_usage_snippet_runs_as_written(fmt, runs, exports, monkeypatch):
    from PIL import Image

    result = exports[("frozen-base", fmt)]
    folder = Path(result.path)
    card = json.loads(Path(result.card).read_text())
    assert 9 <= len(card["usage"].splitlines()) <= 11
    test_file = Path(_first_test_file(runs["frozen-base"]))
    monkeypatch.chdir(folder)
    Image.open(test_file).convert("RGB").save("photo.jpg")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(card["usage"], "usage", "exec"), {})  # noqa: S102 - the snippet we ship
    os.remove("photo.jpg")
    assert printed.getvalue().split()[0] in card["class_names"]


def _first_test_file(run_dir: Path) -> str:
    from engine.data.split import load_split

    return load_split(run_dir / rundir.SPLIT).test[0][0]


@pytest.mark.parametrize("fmt, quantize", [("litert", "float16"), ("litert", "dynamic"), ("litert", "int8"),
                                           ("onnx", "float16"), ("onnx", "dynamic"), ("onnx", "int8")])
def test_quantized_export_reports_accuracy_beside_the_original(fmt, quantize, runs, tmp_path):
    result = run(ExportConfig(model=str(runs["frozen-base"]), format=fmt, quantize=quantize, out=str(tmp_path / "q"),
                              max_accuracy_drop=0.5))
    parity = result.parity
    assert parity["quantize"] == quantize and parity["keras_accuracy"] is not None
    assert parity["export_accuracy"] >= parity["keras_accuracy"] - 0.5
    assert 0 < parity["max_abs_diff"] < 0.1  # quantized: close, not identical
    plain = (runs["frozen-base"] / "best.keras").stat().st_size
    assert result.size_bytes < plain  # smaller than float32
    card = json.loads(Path(result.card).read_text())
    if quantize == "int8":
        assert any("training split" in note for note in card["notes"])
