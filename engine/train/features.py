"""The feature cache of the ``features`` strategy: run the frozen base once per split, keep the result.

A cache entry is one ``.npz`` file per split under :func:`engine.paths.features_cache_dir`, named by
a key that hashes everything the features depend on: base name, weights identity (source and, for a
file, its size and modification time), image size, pooling, the split's file list with labels and
the dataset fingerprint. The file holds ``features``, ``labels`` and a sha256 ``checksum`` of both;
it is written atomically. A file that does not load or whose checksum does not match is reported
(:class:`Warning_`) and rebuilt. Extraction checks the cancel token between batches.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine import atomic
from engine.events import CancelToken, JobCancelled, Progress, Sink, Status, Warning_, discard
from engine.paths import features_cache_dir

CACHE_VERSION = 1
# Images per extraction step (not the training batch size): EfficientNet-Lite0 at 224 px, compiled,
# batches of 8 against 32 held 0.69 GB resident against 0.94 GB and ran 20.6-24.8 against
# 14.5-16.8 images/s (interleaved, 2 busy cores, 2026-11-30).
EXTRACT_BATCH = 8


def weights_identity(spec) -> str:
    """A string that changes when the base's weights change."""
    try:
        status = spec.weights_status()
        source, present = status.source, status.present
    except Exception as error:  # a broken status function must not stop training
        source, present = f"unknown ({error})", False
    ident = f"{spec.name}|{spec.weights_source}|{source}|{present}"
    path = Path(str(source))
    try:
        if path.is_file():
            st = path.stat()
            ident += f"|{st.st_size}|{int(st.st_mtime)}"
    except OSError:
        pass
    return ident


def cache_key(*, base: str, weights: str, image_size: int, pooling: str,
              items: Sequence[tuple[str, int]], fingerprint: str) -> str:
    digest = hashlib.sha256()
    header = {"v": CACHE_VERSION, "base": base, "weights": weights, "size": int(image_size),
              "pooling": pooling, "fingerprint": fingerprint}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for path, label in items:
        digest.update(f"{os.path.abspath(path)}\t{int(label)}\n".encode())
    return digest.hexdigest()[:32]


def _checksum(features: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(str(features.shape).encode())
    for array in (features, labels):  # hashed in place: .tobytes() would copy 500 MB at 224 px
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return digest.hexdigest()


def cache_path(key: str, subset: str) -> Path:
    return features_cache_dir() / f"{key}_{subset}.npz"


def load_cached(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays, or None when the file is missing; raises ValueError when it is corrupt."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            features, labels = data["features"], data["labels"]
            stored = str(data["checksum"])
    except Exception as error:
        raise ValueError(f"unreadable ({type(error).__name__})") from error
    if _checksum(features, labels) != stored:
        raise ValueError("checksum mismatch")
    return features, labels


def save_cached(path: Path, features: np.ndarray, labels: np.ndarray) -> None:
    checksum = _checksum(features, labels)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, features=features, labels=labels, checksum=np.array(checksum))

    atomic.save_with(path, write, suffix=".npz.tmp")


def extract(extractor, dataset, total_batches: int, count: int, *, emit: Sink = discard,
            cancel: CancelToken | None = None, subset: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Run ``extractor`` over a (images, labels) dataset of ``count`` images batch by batch; cancel
    between batches. Each batch is written into one preallocated float32 array: a list of batches
    joined at the end held the features three times over (list, concatenation, float32 copy), 1.5 GB
    for the book's 62,720 flattened features of 2,000 images at 224 px. The base runs as one compiled
    function: called eagerly, op by op, EfficientNet-Lite0 took 3.2 GB resident for one batch of 32
    at 224 px, compiled 0.97 GB."""
    from engine.tf_runtime import tf  # noqa: PLC0415

    t = tf()
    run = t.function(lambda images: extractor(images, training=False),
                     input_signature=[t.TensorSpec((None,) + tuple(extractor.input.shape[1:]), "float32")])
    features = np.empty((count,) + tuple(extractor.output.shape[1:]), "float32")
    labels: list[np.ndarray] = []
    done = 0
    for i, (images, y) in enumerate(dataset):
        if cancel is not None:
            cancel.raise_if_cancelled()
        batch = np.asarray(run(t.cast(images, "float32")))
        features[done:done + len(batch)] = batch
        done += len(batch)
        labels.append(np.asarray(y))
        emit(Progress(done=i + 1, total=total_batches, message=f"extracting {subset} features"))
    if cancel is not None:
        cancel.raise_if_cancelled()
    if done != count:
        raise ValueError(f"{subset} gave {done} images, expected {count}")
    return features, np.concatenate(labels) if labels else np.zeros((0,), "float32")


class FeatureRows:
    """One split's cached features and labels, handed out a batch of rows at a time; ``release()``
    drops the arrays once the head is trained (a dataset Keras or tf.data still holds then keeps
    nothing large alive: the full model is assembled and saved after, and needs the room)."""

    def __init__(self, features: np.ndarray, labels: np.ndarray) -> None:
        self.count, self.feature_shape, self.label_shape = len(features), features.shape[1:], labels.shape[1:]
        self.dtypes = (features.dtype, labels.dtype)
        self._arrays: tuple[np.ndarray, np.ndarray] | None = (features, labels)

    def __call__(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            raise RuntimeError("these features were released")
        features, labels = self._arrays
        return features[indices], labels[indices]

    def release(self) -> None:
        self._arrays = None


def training_dataset(rows: FeatureRows, batch_size: int, *, shuffle: bool = False, seed: int = 0):
    """Batches of cached features for the head, gathered from the NumPy arrays themselves: a shuffle
    permutes indices and each batch copies only its own rows. ``from_tensor_slices(...).shuffle(len)``
    held every feature vector twice more (a tensor copy and a full shuffle buffer: 1 GB for the
    book's flattened features of 2,000 images at 224 px)."""
    from engine.data.pipeline import without_autotune_model  # noqa: PLC0415
    from engine.tf_runtime import tf  # noqa: PLC0415

    t = tf()
    x_dtype, y_dtype = (t.as_dtype(dtype) for dtype in rows.dtypes)

    def gather(indices):
        batch_x, batch_y = t.numpy_function(rows, [indices], [x_dtype, y_dtype], stateful=False)
        return t.ensure_shape(batch_x, (None,) + rows.feature_shape), t.ensure_shape(batch_y, (None,) + rows.label_shape)

    indices = t.data.Dataset.range(rows.count)
    if shuffle:
        indices = indices.shuffle(rows.count, seed=seed, reshuffle_each_iteration=True)
    return without_autotune_model(indices.batch(batch_size).map(gather).prefetch(2))


def cached_features(*, key: str, subset: str, compute, emit: Sink = discard) -> tuple[np.ndarray, np.ndarray, bool]:
    """Return ``(features, labels, reused)`` for one split, computing and caching on a miss.

    ``compute()`` returns the arrays; a corrupt cache file is reported and rebuilt.
    """
    path = cache_path(key, subset)
    try:
        hit = load_cached(path)
    except ValueError as error:
        emit(Warning_(f"feature cache {path.name} is corrupt ({error}); rebuilding it"))
        hit = None
    if hit is not None:
        emit(Status(f"reusing cached {subset} features ({len(hit[0])} images)"))
        return hit[0], hit[1], True
    features, labels = compute()
    save_cached(path, features, labels)
    return features, labels, False


def describe(key: str) -> dict[str, Any]:
    return {"key": key, "folder": str(features_cache_dir())}


__all__ = ["cache_key", "cached_features", "extract", "FeatureRows", "training_dataset", "weights_identity", "load_cached",
           "save_cached", "cache_path", "JobCancelled"]
