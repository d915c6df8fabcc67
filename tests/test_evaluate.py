"""Evaluation writes metrics.json: confusion matrix, per-class scores, misclassified files, predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imagegen import make_presplit_dataset, make_shapes_dataset
from quick_runs import trained_three_shapes

from engine.errors import DatasetError
from engine.train.evaluate import class_scores, compute_metrics, evaluate


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    return trained_three_shapes(tmp_path_factory.mktemp("eval"))


def test_metrics_json_matches_the_test_split(trained_run):
    run, _ = trained_run
    result = evaluate(run)
    metrics = json.loads((run / "metrics.json").read_text())
    test_lines = (run / "split" / "test.txt").read_text().splitlines()
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == len(test_lines) == result.count
    assert metrics["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    assert set(metrics["per_class"]) == {"circle", "square", "triangle"}
    for i, name in enumerate(metrics["classes"]):
        assert metrics["per_class"][name]["support"] == matrix[i].sum()
    assert len(metrics["predictions"]) == result.count
    wrong = [p for p in metrics["predictions"] if p["true"] != p["predicted"]]
    assert len(metrics["misclassified"]) == len(wrong) == matrix.sum() - np.trace(matrix)
    for p in metrics["predictions"]:
        assert Path(p["path"]).is_file() and abs(sum(p["scores"]) - 1) < 1e-4
    assert np.isfinite(metrics["loss"]) and metrics["loss"] > 0


def test_evaluate_on_another_folder_and_class_mismatch(trained_run, tmp_path):
    run, _ = trained_run
    # two of the run's three classes: in this folder square/ sorts first (index 0), in the run circle is 0
    other = make_presplit_dataset(tmp_path / "other", counts=(2, 2, 3), size=48, classes=("triangle", "square"),
                                  seed=5)
    result = evaluate(run, data=str(other))
    assert result.count == 6  # the test/ folder only
    assert result.classes == ["circle", "square", "triangle"]  # the run's classes, in the run's order
    # classes matched by name: the true labels are the folders' names, none became "circle" by position
    assert [sum(row) for row in result.confusion_matrix] == [0, 3, 3]
    assert {name: scores["support"] for name, scores in result.per_class.items()} == {
        "circle": 0, "square": 3, "triangle": 3}
    stranger = make_shapes_dataset(tmp_path / "stranger", per_class=2, size=48, classes=("circle", "cross"))
    with pytest.raises(DatasetError, match="cross"):
        evaluate(run, data=str(stranger))


def test_binary_scores_and_metrics_by_hand():
    scores = class_scores(np.array([[0.9], [0.2], [0.6], [0.4]]), 2)
    np.testing.assert_allclose(scores[:, 0] + scores[:, 1], 1.0)
    labels = np.array([1, 0, 0, 1])
    metrics = compute_metrics(scores, labels, ["a", "b"])
    assert metrics["confusion_matrix"] == [[1, 1], [1, 1]]
    assert metrics["accuracy"] == 0.5
    assert metrics["per_class"]["b"]["precision"] == 0.5 and metrics["per_class"]["b"]["recall"] == 0.5
    expected_loss = -np.mean(np.log([0.9, 0.8, 0.4, 0.4]))
    assert metrics["loss"] == pytest.approx(expected_loss)


def test_flip_averaged_figures_sit_beside_the_plain_ones(trained_run):
    """Test-time augmentation: each image and its mirror image, scores averaged — computed here by
    hand from the model, and reported next to (never instead of) the plain figures."""
    from engine.data.pipeline import make_dataset
    from engine.models.loading import load_keras_file

    run, _ = trained_run
    plain = evaluate(run)
    both = evaluate(run, flip_average=True)
    assert (both.accuracy, both.loss, both.confusion_matrix) == (plain.accuracy, plain.loss, plain.confusion_matrix)
    assert [p["predicted"] for p in both.predictions] == [p["predicted"] for p in plain.predictions]
    model = load_keras_file(run / both.model_file)
    items = [(p["path"], both.classes.index(p["true"])) for p in both.predictions]
    images = np.concatenate([x.numpy() for x, _ in make_dataset(items, 48, 8, num_classes=3)])
    averaged = (np.asarray(model(images)) + np.asarray(model(images[:, :, ::-1, :]))) / 2
    labels = np.array([label for _, label in items])
    assert both.flip_averaged["loss"] == pytest.approx(-np.mean(np.log(averaged[np.arange(len(labels)), labels])),
                                                       rel=1e-4)
    assert [p["predicted_flip_averaged"] for p in both.predictions] == [both.classes[i] for i in averaged.argmax(1)]
    assert both.flip_averaged["accuracy"] == pytest.approx(np.mean(averaged.argmax(1) == labels))
    assert "flip_averaged" in json.loads((run / "metrics.json").read_text())
