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
    digest.update(np.ascontiguousarray(features).tobytes())
    digest.update(np.ascontiguousarray(labels).tobytes())
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


def extract(extractor, dataset, total_batches: int, *, emit: Sink = discard,
            cancel: CancelToken | None = None, subset: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Run ``extractor`` over a (images, labels) dataset batch by batch; cancel between batches."""
    features: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for i, (images, y) in enumerate(dataset):
        if cancel is not None:
            cancel.raise_if_cancelled()
        features.append(np.asarray(extractor(images, training=False)))
        labels.append(np.asarray(y))
        emit(Progress(done=i + 1, total=total_batches, message=f"extracting {subset} features"))
    if cancel is not None:
        cancel.raise_if_cancelled()
    if not features:
        return np.zeros((0,) + tuple(extractor.output.shape[1:]), "float32"), np.zeros((0,), "float32")
    return np.concatenate(features).astype("float32"), np.concatenate(labels)


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


__all__ = ["cache_key", "cached_features", "extract", "weights_identity", "load_cached", "save_cached",
           "cache_path", "JobCancelled"]
