"""The check every export passes before it is reported done: the artifact against the Keras model.

Both are fed the same images (the run's test split, or images the user names), read and resized
as training read them (``engine.data.images.read_rgb_resized``: raw RGB 0..255). A float export
passes when the largest absolute output difference is at most ``FLOAT_MAX_DIFF`` and every top-1
prediction agrees; a quantized one when its accuracy is at most ``max_accuracy_drop`` below the
Keras model's on labelled images (on unlabelled images: its top-1 agreement with Keras is at
least ``1 - max_accuracy_drop``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from engine.errors import DatasetError
from engine.events import CancelToken, Progress, Sink, Warning_

FLOAT_MAX_DIFF = 1e-4
DEFAULT_MAX_ACCURACY_DROP = 0.01
BATCH = 32
REPRESENTATIVE_COUNT = 100

Item = tuple[str, int]  # path, class index (-1: unknown)


@dataclass
class ImageSet:
    items: list[Item]
    source: str

    @property
    def labelled(self) -> bool:
        return bool(self.items) and all(label >= 0 for _, label in self.items)


def run_split(run_dir: Path, subset: str) -> list[Item]:
    from engine.data.split import load_split  # noqa: PLC0415

    return list(load_split(run_dir / "split").subset(subset))


def user_images(folder: str | os.PathLike, classes: list[str] | None) -> ImageSet:
    """Images under ``folder``: labelled when it holds folders named like the model's classes."""
    from engine.data.images import IMAGE_EXTENSIONS  # noqa: PLC0415

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DatasetError(f"--images '{root}' is not a folder", "give a folder of images (or of class folders)")

    def files(under: Path) -> list[str]:
        return sorted(str(p) for p in under.rglob("*")
                      if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))

    named = [c for c in (classes or []) if (root / c).is_dir()]
    if named:
        items = [(path, classes.index(c)) for c in named for path in files(root / c)]
        source = f"{root} (class folders: {', '.join(named)})"
    else:
        items = [(path, -1) for path in files(root)]
        source = f"{root} (unlabelled)"
    if not items:
        raise DatasetError(f"no images found under '{root}'", "give a folder holding JPEG or PNG images")
    return ImageSet(items, source)


def sample(items: list[Item], count: int | None, seed: int = 0) -> list[Item]:
    """At most ``count`` items, spread evenly over the list (which keeps every class present)."""
    if count is None or len(items) <= count:
        return list(items)
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in sorted(set(picks.tolist()))]


def batches(items: list[Item], size: int, emit: Sink, batch: int = BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(images float32 (n, S, S, 3) raw 0..255, labels) in batches; unreadable files are skipped with a warning."""
    from engine.data.images import UnusableImage, read_rgb_resized  # noqa: PLC0415

    pixels, labels = [], []
    for path, label in items:
        try:
            pixels.append(read_rgb_resized(path, size))
        except UnusableImage as error:
            emit(Warning_(f"skipped in the parity check: {error}"))
            continue
        labels.append(label)
        if len(pixels) == batch:
            yield np.stack(pixels).astype("float32"), np.array(labels)
            pixels, labels = [], []
    if pixels:
        yield np.stack(pixels).astype("float32"), np.array(labels)


def representative(items: list[Item], size: int, emit: Sink) -> Callable[[], Iterator[np.ndarray]]:
    """The int8 calibration set: a generator function of single-image batches."""
    chosen = sample(items, REPRESENTATIVE_COUNT)

    def generate() -> Iterator[np.ndarray]:
        for images, _ in batches(chosen, size, emit):
            for image in images:
                yield image[None]

    return generate


@dataclass
class ParityReport:
    images: int
    source: str
    quantize: str
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    keras_accuracy: float | None
    export_accuracy: float | None
    criterion: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        text = (f"{self.images} images: max abs diff {self.max_abs_diff:.2g}, "
                f"top-1 agreement {self.top1_agreement:.1%}")
        if self.keras_accuracy is not None:
            text += f", accuracy {self.export_accuracy:.2%} (Keras {self.keras_accuracy:.2%})"
        return text


def _top1(outputs: np.ndarray) -> np.ndarray:
    if outputs.shape[-1] == 1:
        return (outputs[:, 0] > 0.5).astype(int)
    return outputs.argmax(axis=1)


def compare(keras_predict, export_predict, images: ImageSet, size: int, *, quantize: str, max_accuracy_drop: float,
            emit: Sink, cancel: CancelToken | None) -> ParityReport:
    """Run both on every image; the figures and whether the export passes (see the module doc)."""
    total = -(-len(images.items) // BATCH)
    diffs, agree, keras_right, export_right, count = [], 0, 0, 0, 0
    labelled = images.labelled
    for i, (x, labels) in enumerate(batches(images.items, size, emit)):
        if cancel is not None:
            cancel.raise_if_cancelled()
        expected = np.asarray(keras_predict(x), dtype="float64")
        got = np.asarray(export_predict(x), dtype="float64").reshape(expected.shape)
        diffs.append(np.abs(got - expected).reshape(len(x), -1).max(axis=1))
        a, b = _top1(expected), _top1(got)
        agree += int((a == b).sum())
        if labelled:
            keras_right += int((a == labels).sum())
            export_right += int((b == labels).sum())
        count += len(x)
        emit(Progress(done=i + 1, total=total, message="checking the export against the Keras model"))
    if not count:
        raise DatasetError(f"none of the images of {images.source} could be read", "give readable JPEG or PNG images")
    diff = np.concatenate(diffs)
    agreement = agree / count
    keras_accuracy = keras_right / count if labelled else None
    export_accuracy = export_right / count if labelled else None
    if quantize == "none":
        criterion = f"max abs diff <= {FLOAT_MAX_DIFF:g} and 100% top-1 agreement"
        passed = float(diff.max()) <= FLOAT_MAX_DIFF and agree == count
    elif labelled:
        criterion = f"accuracy at most {max_accuracy_drop:.1%} below the Keras model's"
        passed = export_accuracy >= keras_accuracy - max_accuracy_drop - 1e-12
    else:
        criterion = f"top-1 agreement at least {1 - max_accuracy_drop:.1%} (images without labels)"
        passed = agreement >= 1 - max_accuracy_drop - 1e-12
    return ParityReport(images=count, source=images.source, quantize=quantize, max_abs_diff=float(diff.max()),
                        mean_abs_diff=float(diff.mean()), top1_agreement=agreement, keras_accuracy=keras_accuracy,
                        export_accuracy=export_accuracy, criterion=criterion, passed=bool(passed))
