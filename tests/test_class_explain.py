"""Whole-class explanations: `convscope gradcam RUN --test-class NAME [--predicted NAME] --out DIR`."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from quick_runs import trained_three_shapes

from engine.cli import main

pytestmark = pytest.mark.slow  # trains a small run


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir, _ = trained_three_shapes(tmp_path_factory.mktemp("class_explain"))
    return run_dir


def test_test_class_writes_the_mean_heatmap_and_a_gallery_weakest_first(trained_run, tmp_path, capsys):
    from engine.data.images import read_rgb
    from engine.data.split import load_split
    from engine.inspect.explain import ExplainRequest, explain
    from engine.models.loading import load_model

    out = tmp_path / "circle"
    assert main(["gradcam", str(trained_run), "--test-class", "circle", "--out", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    test = [path for path, label in load_split(trained_run / "split").test if label == 0]
    assert data["count"] == len(test) == data["test_images_of_class"] and data["explained_class"] == "circle"
    gaps = [item["faithfulness"] for item in data["images"]]
    assert gaps == sorted(gaps)  # weakest explanation first
    for item in data["images"]:
        assert item["faithfulness"] == pytest.approx(item["insertion_auc"] - item["deletion_auc"])
    # the mean heatmap is the mean of the maps the one-image route gives for these images
    loaded = load_model(trained_run)
    maps = [explain(loaded, read_rgb(path), ExplainRequest(class_=0)).cam.heatmap for path in test]
    np.testing.assert_allclose(np.load(out / "mean_heatmap.npy"), np.mean(maps, axis=0), atol=1e-5)
    gallery = np.asarray(Image.open(out / "gallery.png"))
    assert gallery.shape[1] == 8 * 128 and gallery.shape[0] == -(-len(test) // 8) * (128 + 14)
    assert np.asarray(Image.open(out / "mean_overlay.png")).shape == (48, 48, 3)
    assert main(["gradcam", str(trained_run), "--test-class", "circle", "--out", str(tmp_path / "t")]) == 0
    assert "Weakest explanations first" in capsys.readouterr().out


def test_a_confusion_cell_keeps_the_images_predicted_as_that_class(trained_run, tmp_path, capsys):
    from engine.train.evaluate import evaluate

    predictions = evaluate(trained_run).predictions
    square = [p for p in predictions if p["true"] == "square"]
    predicted, count = Counter(p["predicted"] for p in square).most_common(1)[0]
    assert main(["gradcam", str(trained_run), "--test-class", "square", "--predicted", predicted,
                 "--out", str(tmp_path / "cell"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["count"] == count and data["explained_class"] == predicted
    assert {item["predicted"] for item in data["images"]} == {predicted}
    assert sorted(item["path"] for item in data["images"]) == sorted(p["path"] for p in square
                                                                      if p["predicted"] == predicted)
    assert main(["gradcam", str(trained_run), "--test-class", "hexagon", "--out", str(tmp_path / "x")]) == 2
    assert "'hexagon' is not one of the run's classes" in capsys.readouterr().err
