"""Evaluate a run's model on its test split (or on another folder) and write metrics.json.

metrics.json holds: loss, accuracy, per-class precision/recall/F1/support, the confusion matrix
(rows = true class, columns = predicted class), the misclassified files with their scores, and a
prediction for every file (so the GUI can show the images of any confusion-matrix cell).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import atomic
from engine.errors import DatasetError, ModelFileError
from engine.events import CancelToken, Progress, Sink, Status, discard
from engine.train import rundir


@dataclass
class EvaluationResult:
    run_dir: str
    model_file: str
    data: str
    classes: list[str]
    count: int
    loss: float
    accuracy: float
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    misclassified: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    # with flip_average: accuracy, loss, per_class and confusion_matrix of the scores averaged over
    # each image and its mirror image; every prediction then also has "predicted_flip_averaged"
    flip_averaged: dict[str, Any] | None = None
    # weights of the evaluated model that training may change (a frozen base's are not counted)
    trainable_parameters: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_file(run_dir: Path) -> Path:
    for name in (rundir.BEST, rundir.LAST):
        if (run_dir / name).is_file():
            return run_dir / name
    raise ModelFileError(f"run folder '{run_dir}' has no best.keras or last.keras",
                         "train (or resume) the run until at least one epoch finishes")


def _items_for(run_dir: Path, config: dict[str, Any], data: str | None, emit: Sink, cancel):
    classes = list(config["classes"])
    if data is None:
        from engine.data.split import load_split  # noqa: PLC0415

        split = load_split(run_dir / rundir.SPLIT)
        if not split.test:
            raise DatasetError(f"run '{run_dir}' has no test images in its split",
                               "evaluate on another folder with --data")
        return split.test, "test split of " + str(split.root)
    from engine.data.scan import ScanConfig, scan  # noqa: PLC0415

    result = scan(ScanConfig(root=str(data)), emit=emit, cancel=cancel)
    if result.layout == "split":
        if not result.files.get("test"):
            raise DatasetError(f"'{data}' has no test/ folder", "give a folder of class folders or one with test/")
        found = result.files["test"]
        where = f"{data} (test/)"
    else:
        found = result.files["all"]
        where = str(data)
    unknown = [name for name in result.classes if name not in classes]
    if unknown:
        raise DatasetError(f"'{data}' has classes the model was not trained on: {', '.join(unknown)}",
                           f"the model knows: {', '.join(classes)}")
    remap = {i: classes.index(name) for i, name in enumerate(result.classes)}
    return [(path, remap[label]) for path, label in found], where


def class_scores(outputs: np.ndarray, num_classes: int) -> np.ndarray:
    """Model outputs → one probability per class (a sigmoid unit's class 0 is 1 − p)."""
    outputs = np.asarray(outputs, dtype="float64")
    if num_classes == 2 and outputs.ndim == 2 and outputs.shape[1] == 1:
        p = outputs[:, 0]
        return np.stack([1.0 - p, p], axis=1)
    return outputs


def compute_metrics(scores: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Loss, accuracy, per-class precision/recall/F1 and the confusion matrix."""
    n = len(classes)
    labels = labels.astype(int)
    predicted = scores.argmax(axis=1) if len(scores) else np.zeros(0, int)
    eps = 1e-7
    true_p = np.clip(scores[np.arange(len(labels)), labels], eps, 1.0) if len(labels) else np.zeros(0)
    loss = float(-np.mean(np.log(true_p))) if len(labels) else math.nan
    matrix = np.zeros((n, n), dtype=int)
    for t, p in zip(labels, predicted):
        matrix[t, p] += 1
    per_class = {}
    for i, name in enumerate(classes):
        tp = matrix[i, i]
        precision = tp / matrix[:, i].sum() if matrix[:, i].sum() else 0.0
        recall = tp / matrix[i, :].sum() if matrix[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                           "support": int(matrix[i, :].sum())}
    accuracy = float(np.trace(matrix) / matrix.sum()) if matrix.sum() else math.nan
    return {"loss": loss, "accuracy": accuracy, "per_class": per_class, "confusion_matrix": matrix.tolist(),
            "predicted": predicted}


def _compiled_forward(model, flip_average: bool):
    """The model's inference pass as one compiled graph (an eager call dispatches each of a pretrained
    base's hundreds of layers from Python, several times slower per batch); with ``flip_average`` the
    batch's mirror images (left-right) go through the same pass after the images."""
    from engine.tf_runtime import tf  # noqa: PLC0415

    t = tf()

    @t.function(reduce_retracing=True)
    def forward(images):
        if flip_average:
            images = t.concat([images, t.reverse(images, axis=[2])], axis=0)
        return model(images, training=False)

    return forward


def evaluate(run_dir: str | Path, data: str | None = None, emit: Sink = discard,
             cancel: CancelToken | None = None, batch_size: int = 32, flip_average: bool = False) -> EvaluationResult:
    """Predict every test image of the run (or of ``data``), compute the metrics, write metrics.json.

    ``flip_average``: also predict each image mirrored left-right and report, beside (never instead
    of) the plain figures, the metrics of the two scores averaged (test-time augmentation). Only
    for data whose mirror image is the same class (photos of objects, not text or digits)."""
    from engine.data.pipeline import make_dataset  # noqa: PLC0415

    started = time.perf_counter()
    run_dir = rundir.require_run_dir(run_dir)
    config = rundir.read_config(run_dir)
    classes = list(config["classes"])
    size = int(config["image_size"])
    items, where = _items_for(run_dir, config, data, emit, cancel)
    if not items:
        raise DatasetError(f"no images to evaluate in {where}", "give a folder with images of the run's classes")
    path = model_file(run_dir)
    emit(Status(f"evaluating {path.name} on {len(items)} images of {where}"))
    from engine.models.loading import load_keras_file  # noqa: PLC0415

    model = load_keras_file(path)  # safe mode; raises ModelFileError for a damaged file
    dataset = make_dataset(items, size, batch_size, num_classes=len(classes), shuffle=False, cache=None)
    batches = math.ceil(len(items) / batch_size)
    scores_of = _compiled_forward(model, flip_average)
    outputs, mirrored = [], []
    for i, (images, _) in enumerate(dataset):
        if cancel is not None:
            cancel.raise_if_cancelled()
        batch_scores = np.asarray(scores_of(images))
        outputs.append(batch_scores[:len(images)])
        if flip_average:  # the mirror images' scores follow the images' in the same pass
            mirrored.append(batch_scores[len(images):])
        emit(Progress(done=i + 1, total=batches, message="evaluating"))
    scores = class_scores(np.concatenate(outputs), len(classes))
    labels = np.array([label for _, label in items])
    metrics = compute_metrics(scores, labels, classes)
    predicted = metrics.pop("predicted")
    flip_averaged = None
    if flip_average:
        flip_averaged = compute_metrics((scores + class_scores(np.concatenate(mirrored), len(classes))) / 2,
                                        labels, classes)
        averaged_predicted = flip_averaged.pop("predicted")
    predictions, misclassified = [], []
    for (file, label), pred, row in zip(items, predicted, scores):
        entry = {"path": file, "true": classes[label], "predicted": classes[int(pred)],
                 "score": float(row[int(pred)]), "scores": [float(v) for v in row]}
        if flip_averaged is not None:
            entry["predicted_flip_averaged"] = classes[int(averaged_predicted[len(predictions)])]
        predictions.append(entry)
        if int(pred) != label:
            misclassified.append({**entry, "true_score": float(row[label])})
    misclassified.sort(key=lambda e: -e["score"])
    result = EvaluationResult(
        run_dir=str(run_dir), model_file=path.name, data=where, classes=classes, count=len(items),
        loss=metrics["loss"], accuracy=metrics["accuracy"], per_class=metrics["per_class"],
        confusion_matrix=metrics["confusion_matrix"], misclassified=misclassified, predictions=predictions,
        seconds=time.perf_counter() - started, flip_averaged=flip_averaged,
        trainable_parameters=int(sum(np.prod(w.shape) for w in model.trainable_weights)),
    )
    atomic.write_json(run_dir / rundir.METRICS, result.to_dict())
    emit(Status(f"test accuracy {result.accuracy:.3f}, loss {result.loss:.3f} on {result.count} images"))
    return result
