"""Whole-class explanations: a CAM over every test image of a class (or of one confusion-matrix cell).

For a run's test images of class A (optionally only those the model predicts as B: the cell A → B),
each image is explained through :func:`engine.inspect.explain.explain` (the class explained is A for a
whole class, B for a cell: why did the model say B?) and scored by its deletion and insertion curves.
The result holds the mean heatmap over the images (for aligned data such as the demo's garments it
shows where the model looks on average) and the images sorted by faithfulness — insertion AUC minus
deletion AUC — weakest first, so the images where the explanation is least to be trusted come first.
``convscope gradcam RUN --test-class A [--predicted B] --out DIR`` and the Evaluation tab call
:func:`explain_test_class`; :func:`write_class_explanation` writes the files.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine import atomic
from engine.errors import DatasetError, InvalidSetting, check_at_least
from engine.events import CancelToken, Progress, Sink, Status, discard
from engine.inspect.cam import METHODS, overlay, resize_heatmap

TILE = 128  # gallery tile side in pixels


@dataclass(frozen=True)
class ClassExplainConfig:
    run: str
    test_class: str
    predicted: str | None = None  # a confusion cell: only the images the model predicts as this class
    method: str = "gradcam"
    layer: str | None = None
    target: str = "logit"
    steps: int = 10  # per faithfulness curve (deletion, insertion)
    limit: int = 200  # at most this many images, in the split's order

    def validate(self) -> None:
        if self.method not in METHODS:
            raise InvalidSetting(f"unknown method '{self.method}'", "choose one of: " + ", ".join(METHODS))
        if not 2 <= self.steps <= 100:
            raise InvalidSetting(f"steps {self.steps} out of range", "use 2 to 100 steps per curve")
        check_at_least("limit", self.limit)


@dataclass(frozen=True)
class ExplainedImage:
    path: str
    predicted: str
    probability: float  # of the explained class
    deletion_auc: float
    insertion_auc: float
    heatmap: np.ndarray = field(repr=False)  # at the model's input (S, S)
    image: np.ndarray = field(repr=False)  # the model's input, uint8

    @property
    def faithfulness(self) -> float:
        return self.insertion_auc - self.deletion_auc

    def to_dict(self) -> dict:
        return {"path": self.path, "predicted": self.predicted, "probability": self.probability,
                "deletion_auc": self.deletion_auc, "insertion_auc": self.insertion_auc,
                "faithfulness": self.faithfulness}


@dataclass(frozen=True)
class ClassExplanation:
    test_class: str
    explained_class: str
    predicted: str | None
    method: str
    items: list  # ExplainedImage, weakest explanation first
    mean_heatmap: np.ndarray = field(repr=False)
    mean_image: np.ndarray = field(repr=False)  # uint8, the mean of the model inputs
    test_images_of_class: int = 0

    def to_dict(self) -> dict:
        return {"test_class": self.test_class, "explained_class": self.explained_class, "predicted": self.predicted,
                "method": self.method, "count": len(self.items), "test_images_of_class": self.test_images_of_class,
                "order": "faithfulness (insertion AUC - deletion AUC), weakest first",
                "images": [item.to_dict() for item in self.items]}


def _class_index(classes: list[str], name: str, option: str) -> int:
    lowered = [c.lower() for c in classes]
    if name.lower() not in lowered:
        raise InvalidSetting(f"{option} '{name}' is not one of the run's classes", "choose one of: " + ", ".join(classes))
    return lowered.index(name.lower())


def explain_test_class(config: ClassExplainConfig, emit: Sink = discard, cancel: CancelToken | None = None,
                       loaded=None) -> ClassExplanation:
    """Explain the test images of ``config.test_class`` in the run ``config.run`` (see the module doc)."""
    from engine.data.images import UnusableImage, read_rgb  # noqa: PLC0415
    from engine.data.split import load_split  # noqa: PLC0415
    from engine.inspect.explain import ExplainRequest, explain  # noqa: PLC0415
    from engine.inspect.faithfulness import FaithfulnessConfig, faithfulness  # noqa: PLC0415
    from engine.models.loading import load_model  # noqa: PLC0415
    from engine.train import rundir  # noqa: PLC0415

    config.validate()
    run = rundir.require_run_dir(config.run)
    loaded = loaded or load_model(run)
    classes = list(rundir.read_config(run)["classes"])
    true_index = _class_index(classes, config.test_class, "--test-class")
    predicted_index = None if config.predicted is None else _class_index(classes, config.predicted, "--predicted")
    explained_index = true_index if predicted_index is None else predicted_index
    test = [path for path, label in load_split(run / rundir.SPLIT).test if label == true_index]
    if not test:
        raise DatasetError(f"run '{run}' has no test images of class '{classes[true_index]}'",
                           "choose a class with test images (see the Evaluation tab)")
    test = test[: config.limit]
    request = ExplainRequest(method=config.method, class_=explained_index, layer=config.layer, target=config.target)
    scoring = FaithfulnessConfig(steps=config.steps, road=False, baselines=False)
    items: list[ExplainedImage] = []
    for done, path in enumerate(test, 1):
        if cancel is not None:
            cancel.raise_if_cancelled()
        try:
            image = read_rgb(path)
        except UnusableImage as error:
            emit(Status(f"skipped {path}: {error.reason}"))
            continue
        result = explain(loaded, image, request, cancel)
        predicted = result.top[0][0]
        emit(Progress(done=done, total=len(test), message=f"{config.method} of {Path(path).name}"))
        if predicted_index is not None and predicted != predicted_index:
            continue
        cam = result.cam
        scores = faithfulness(loaded.model, result.input_array, cam.heatmap, cam.class_index, scoring,
                              output_index=cam.output_index, low_res=cam.raw.shape).explained
        items.append(ExplainedImage(
            path=str(path), predicted=classes[predicted], probability=float(scores.deletion.scores[0]),
            deletion_auc=scores.deletion.auc, insertion_auc=scores.insertion.auc,
            heatmap=resize_heatmap(cam.heatmap, result.input_array.shape[:2]),
            image=np.clip(np.asarray(result.input_array), 0, 255).astype(np.uint8)))
    if not items:
        cell = f"'{classes[true_index]}' predicted as '{classes[explained_index]}'"
        raise DatasetError(f"no test image of {cell} in run '{run}'", "pick a cell of the confusion matrix with images")
    items.sort(key=lambda item: item.faithfulness)
    size = items[0].heatmap.shape
    same = [item for item in items if item.heatmap.shape == size]
    mean_heatmap = np.mean([item.heatmap for item in same], axis=0).astype(np.float32)
    mean_image = np.mean([item.image.astype(np.float32) for item in same], axis=0).round().astype(np.uint8)
    emit(Status(f"explained {len(items)} image(s) of '{classes[true_index]}'"))
    return ClassExplanation(test_class=classes[true_index], explained_class=classes[explained_index],
                            predicted=None if predicted_index is None else classes[predicted_index],
                            method=config.method, items=items, mean_heatmap=mean_heatmap, mean_image=mean_image,
                            test_images_of_class=len(test))


def gallery(result: ClassExplanation, columns: int = 8, tile: int = TILE) -> np.ndarray:
    """The overlays, weakest explanation first, each captioned with its rank and faithfulness."""
    from PIL import Image, ImageDraw  # noqa: PLC0415

    rows = -(-len(result.items) // columns)
    caption = 14
    sheet = Image.new("RGB", (columns * tile, rows * (tile + caption)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for rank, item in enumerate(result.items):
        picture = Image.fromarray(overlay(item.image, item.heatmap)).resize((tile, tile), Image.Resampling.BILINEAR)
        x, y = (rank % columns) * tile, (rank // columns) * (tile + caption)
        sheet.paste(picture, (x, y))
        draw.text((x + 2, y + tile + 1), f"{rank + 1}. {item.faithfulness:+.2f}  p {item.probability:.2f}", fill=(0, 0, 0))
    return np.asarray(sheet)


def write_class_explanation(result: ClassExplanation, out_dir: str | Path) -> dict[str, Path]:
    """mean_heatmap.npy, mean_overlay.png, gallery.png and class_explanation.json under ``out_dir``."""
    from PIL import Image  # noqa: PLC0415

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidSetting(f"--out {out}: not a folder", "give a folder for the class explanation's files")
    out.mkdir(parents=True, exist_ok=True)

    def png(pixels: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
        return buffer.getvalue()

    npy = io.BytesIO()
    np.save(npy, result.mean_heatmap)
    files = {"mean_heatmap": out / "mean_heatmap.npy", "mean_overlay": out / "mean_overlay.png",
             "gallery": out / "gallery.png", "summary": out / "class_explanation.json"}
    atomic.write_bytes(files["mean_heatmap"], npy.getvalue())
    atomic.write_bytes(files["mean_overlay"], png(overlay(result.mean_image, result.mean_heatmap)))
    atomic.write_bytes(files["gallery"], png(gallery(result)))
    atomic.write_text(files["summary"], json.dumps(result.to_dict(), indent=2))
    return files
