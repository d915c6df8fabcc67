"""Classify image files with a loaded model: top-k class names and probabilities.

How an image becomes the model's input (documented because it changes the numbers):

- ImageNet models (``LoadedModel.kind == "imagenet"``, e.g. ``efficientnet-lite0``): the standard
  ImageNet evaluation protocol — resize so the shorter side is ``S / 0.875`` (256 for S = 224,
  bilinear, antialiased), then take the central ``S × S`` crop. This is what the expected figures
  in the docs were measured with (cat photo: tiger cat .38, Egyptian cat .37, tabby .16).
- Models trained by ConvScope (run folders, ``.keras`` files): a plain ``S × S`` resize of the whole
  image, exactly as the training pipeline fed them (:func:`engine.data.images.read_rgb_resized`).

Pixels go in as raw RGB float32 0..255 (preprocessing is inside every model). A single-unit
sigmoid output means class 1 has probability ``p`` and class 0 ``1 − p``; a multi-unit output that is
not already a probability vector (logits) goes through a softmax.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from engine.data.images import UnusableImage, read_rgb, resize_rgb
from engine.errors import DatasetError, InvalidSetting
from engine.models.loading import LoadedModel

CROP_FRACTION = 0.875
DEFAULT_SIZE = 224
BATCH = 16


@dataclass
class ImagePrediction:
    path: str
    top: list[tuple[int, str, float]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": self.path,
                "top": [{"index": i, "name": name, "probability": p} for i, name, p in self.top]}


def center_crop(pixels: np.ndarray, size: int, fraction: float = CROP_FRACTION) -> np.ndarray:
    """Resize so the shorter side is ``size / fraction``, then cut the central ``size × size``."""
    height, width = pixels.shape[:2]
    scale = (size / fraction) / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    image = Image.fromarray(pixels).resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def prepare_image(pixels: np.ndarray, size: int, mode: str) -> np.ndarray:
    """``mode`` "crop" (ImageNet protocol) or "resize" (as in training) → S×S×3 uint8."""
    if mode == "crop":
        return center_crop(pixels, size)
    if mode == "resize":
        return resize_rgb(pixels, size)
    raise InvalidSetting(f"unknown resize mode '{mode}'", "use 'crop' or 'resize'")


def default_mode(loaded: LoadedModel) -> str:
    return "crop" if loaded.kind == "imagenet" else "resize"


def load_input(path: str | os.PathLike, size: int, mode: str) -> np.ndarray:
    """Read one image file for a model; an unusable file raises :class:`DatasetError` naming it."""
    try:
        pixels = read_rgb(path)
    except UnusableImage as error:
        raise DatasetError(f"{path}: {error.reason}", "give a readable JPEG or PNG image") from None
    return prepare_image(pixels, size, mode)


def to_probabilities(outputs: np.ndarray) -> np.ndarray:
    """Rows of model outputs → rows of class probabilities (sigmoid unit → two classes)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim != 2:
        raise InvalidSetting(f"the model's output has shape {outputs.shape}, not (batch, classes)",
                             "prediction needs a classifier")
    if outputs.shape[1] == 1:
        p = outputs[:, 0]
        if np.any(p < 0) or np.any(p > 1):  # a logit rather than a sigmoid probability
            p = 1.0 / (1.0 + np.exp(-p))
        return np.stack([1.0 - p, p], axis=1)
    sums = outputs.sum(axis=1)
    if np.any(outputs < 0) or not np.allclose(sums, 1.0, atol=1e-3):
        shifted = outputs - outputs.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=1, keepdims=True)
    return outputs


def class_names_for(loaded: LoadedModel, count: int) -> list[str]:
    names = loaded.class_names
    if names and len(names) == count:
        return list(names)
    if count == 1000:
        from engine import imagenet  # noqa: PLC0415

        return imagenet.class_names()
    return [f"class {i}" for i in range(count)]


def predict_arrays(loaded: LoadedModel, images: np.ndarray, top_k: int = 5) -> list[list[tuple[int, str, float]]]:
    """Top-k per image for a batch of prepared S×S×3 images (uint8 or float 0..255)."""
    batch = np.asarray(images, dtype=np.float32)
    outputs = loaded.model(batch, training=False)
    probs = to_probabilities(np.asarray(outputs))
    names = class_names_for(loaded, probs.shape[1])
    k = max(1, min(int(top_k), probs.shape[1]))
    results = []
    for row in probs:
        order = np.argsort(-row, kind="stable")[:k]
        results.append([(int(i), names[i], float(row[i])) for i in order])
    return results


def predict_images(loaded: LoadedModel, paths, top_k: int = 5, *, mode: str | None = None,
                   image_size: int | None = None) -> list[ImagePrediction]:
    """Classify image files; ``mode`` and ``image_size`` default to the model's (see module doc)."""
    if int(top_k) < 1:
        raise InvalidSetting(f"--top {top_k} must be at least 1")
    size = image_size or loaded.input_size or DEFAULT_SIZE
    mode = mode or default_mode(loaded)
    paths = [str(p) for p in paths]
    results: list[ImagePrediction] = []
    for start in range(0, len(paths), BATCH):
        chunk = paths[start:start + BATCH]
        arrays = np.stack([load_input(p, size, mode) for p in chunk])
        for path, top in zip(chunk, predict_arrays(loaded, arrays, top_k)):
            results.append(ImagePrediction(path=path, top=top))
    return results
