"""The feature cache of the ``features`` strategy: run the frozen base once per split, keep the result.

A cache entry is one ``.npz`` file per split (stored, not compressed) under :func:`engine.paths.features_cache_dir`, named by
a key that hashes everything the features depend on: base name, weights identity (source and, for a
file, its size and modification time), image size, pooling, the split's file list with labels and
the dataset fingerprint. The file holds ``features``, ``labels`` and a sha256 ``checksum`` of both;
it is written atomically as the base produces it, a batch at a time, and the head reads it back a
batch of rows at a time (:class:`FeatureFile`): the features are never held whole. A file that does
not load or whose checksum does not match is reported (:class:`Warning_`) and rebuilt. Extraction
checks the cancel token between batches.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from numpy.lib import format as npformat

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


def write_cache(path: Path, count: int, feature_shape: tuple[int, ...], batches: Iterable, *,
                subset: str = "") -> np.ndarray:
    """Write the cache file (and return the labels) from ``(features, labels)`` batches as they come, never holding more than
    one: the same ``.npz`` as ``np.savez`` (stored, not compressed) and the same checksum, with the
    features streamed into their member. A failure or cancel leaves no file (written atomically)."""
    digest = hashlib.sha256()
    digest.update(str((count,) + tuple(feature_shape)).encode())
    labels: list[np.ndarray] = []
    done = 0
    with atomic.atomic_path(path, suffix=".npz.tmp") as tmp, \
            zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("features.npy", "w", force_zip64=True) as member:
            header = {"descr": npformat.dtype_to_descr(np.dtype("float32")), "fortran_order": False,
                      "shape": (count,) + tuple(feature_shape)}
            npformat.write_array_header_1_0(member, header)
            for features, batch_labels in batches:
                features = np.ascontiguousarray(features, "float32")
                if done + len(features) > count:
                    raise ValueError(f"{subset} gave more than {count} images")
                member.write(memoryview(features).cast("B"))
                digest.update(memoryview(features).cast("B"))
                done += len(features)
                labels.append(np.asarray(batch_labels))
        if done != count:
            raise ValueError(f"{subset} gave {done} images, expected {count}")
        all_labels = np.ascontiguousarray(np.concatenate(labels) if labels else np.zeros((0,), "float32"))
        digest.update(memoryview(all_labels).cast("B"))
        for name, array in (("labels", all_labels), ("checksum", np.array(digest.hexdigest()))):
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                npformat.write_array(member, array, allow_pickle=False)
    return all_labels


def save_cached(path: Path, features: np.ndarray, labels: np.ndarray) -> None:
    write_cache(path, len(features), features.shape[1:], [(features, labels)])


def _read_header(handle) -> tuple[tuple[int, ...], np.dtype]:
    version = npformat.read_magic(handle)
    read = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
    shape, fortran_order, dtype = read(handle)
    if fortran_order:
        raise ValueError("features stored in Fortran order")
    return shape, dtype


def verify_cached(path: Path) -> np.ndarray | None:
    """The cached labels once the whole file matched its checksum (the features are read through in
    chunks, never held), None when the file is missing; raises ValueError when it is corrupt."""
    if not path.is_file():
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.getinfo("features.npy").compress_type != zipfile.ZIP_STORED:
                raise ValueError("features stored compressed: their rows cannot be read in place")
            with archive.open("checksum.npy") as member:
                stored = str(npformat.read_array(member, allow_pickle=False))
            with archive.open("labels.npy") as member:
                labels = npformat.read_array(member, allow_pickle=False)
            digest = hashlib.sha256()
            with archive.open("features.npy") as member:  # zipfile also checks the member's CRC
                shape, dtype = _read_header(member)
                digest.update(str(shape).encode())
                left = int(np.prod(shape)) * dtype.itemsize
                while chunk := member.read(min(left, 1 << 22)):
                    digest.update(chunk)
                    left -= len(chunk)
    except zipfile.BadZipFile as error:  # a changed byte fails the member's CRC before our checksum
        raise ValueError("checksum mismatch" if "CRC" in str(error) else "unreadable (BadZipFile)") from error
    except ValueError:
        raise
    except Exception as error:
        raise ValueError(f"unreadable ({type(error).__name__})") from error
    digest.update(memoryview(np.ascontiguousarray(labels)).cast("B"))
    if left or digest.hexdigest() != stored:
        raise ValueError("checksum mismatch")
    return labels


def load_cached(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays, whole, or None when the file is missing; raises ValueError when it is corrupt."""
    labels = verify_cached(path)
    if labels is None:
        return None
    features = FeatureFile(path)
    try:
        return features[np.arange(len(features))], labels
    finally:
        features.close()


class FeatureFile:
    """The features array of a cache file, read from disk a batch of rows at a time (``file[indices]``).

    Holding the book's flattened features instead took 0.70 GiB for the demo's training and validation
    splits at 224 px (a third of the run's peak); read this way the page cache keeps them, reclaimable
    and outside the process. The member is stored uncompressed, so its rows lie at a fixed offset."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with zipfile.ZipFile(self.path) as archive:
            info = archive.getinfo("features.npy")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise ValueError(f"{self.path.name}: features are compressed or encrypted")
        self._file = open(self.path, "rb", buffering=0)
        try:
            self._file.seek(info.header_offset)
            local = self._file.read(30)
            if local[:4] != b"PK\x03\x04":
                raise ValueError(f"{self.path.name}: no zip entry at the features' offset")
            name_length, extra_length = struct.unpack("<HH", local[26:30])
            self._file.seek(info.header_offset + 30 + name_length + extra_length)
            self.shape, self.dtype = _read_header(self._file)
            self._offset = self._file.tell()
        except BaseException:
            self._file.close()
            raise
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._lock = threading.Lock()  # tf.data may call from several threads; seek + read is one step

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, indices) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        rows = np.empty((len(indices),) + tuple(self.shape[1:]), self.dtype)
        flat = rows.reshape(len(indices), self._row_bytes // self.dtype.itemsize)
        with self._lock:
            for row, index in enumerate(indices):
                if not 0 <= index < len(self):
                    raise IndexError(f"row {index} of {len(self)}")
                self._file.seek(self._offset + int(index) * self._row_bytes)
                if self._file.readinto(memoryview(flat[row]).cast("B")) != self._row_bytes:
                    raise ValueError(f"{self.path.name}: short read at row {index}")
        return rows

    def close(self) -> None:
        self._file.close()


def extract(extractor, dataset, *, cancel: CancelToken | None = None) -> Iterator:
    """Run ``extractor`` over a (images, labels) dataset batch by batch, yielding ``(features, labels)``;
    cancel between batches. The base runs as one compiled function: called eagerly, op by op,
    EfficientNet-Lite0 took 3.2 GB resident for one batch of 32 at 224 px, compiled 0.97 GB."""
    from engine.tf_runtime import tf  # noqa: PLC0415

    t = tf()
    run = t.function(lambda images: extractor(images, training=False),
                     input_signature=[t.TensorSpec((None,) + tuple(extractor.input.shape[1:]), "float32")])
    for images, labels in dataset:
        if cancel is not None:
            cancel.raise_if_cancelled()
        yield np.asarray(run(t.cast(images, "float32"))), np.asarray(labels)
    if cancel is not None:
        cancel.raise_if_cancelled()


def extract_to(path: Path, extractor, dataset, total_batches: int, count: int, *, emit: Sink = discard,
               cancel: CancelToken | None = None, subset: str = "") -> np.ndarray:
    """Extract a split's features straight into its cache file, one batch in memory at a time; the labels."""
    def batches():
        for i, batch in enumerate(extract(extractor, dataset, cancel=cancel)):
            yield batch
            emit(Progress(done=i + 1, total=total_batches, message=f"extracting {subset} features"))

    return write_cache(path, count, tuple(extractor.output.shape[1:]), batches(), subset=subset)


class FeatureRows:
    """One split's features (an array or a :class:`FeatureFile`) and labels, handed out a batch of
    rows at a time; ``release()`` drops them once the head is trained (the full model is assembled
    and saved after, and a dataset Keras or tf.data still holds then keeps nothing large alive)."""

    def __init__(self, features, labels: np.ndarray) -> None:
        self.count, self.feature_shape, self.label_shape = len(features), tuple(features.shape[1:]), labels.shape[1:]
        self.dtypes = (features.dtype, labels.dtype)
        self._arrays = (features, labels)

    def __call__(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            raise RuntimeError("these features were released")
        features, labels = self._arrays
        return features[indices], labels[indices]

    def release(self) -> None:
        if self._arrays is not None and isinstance(self._arrays[0], FeatureFile):
            self._arrays[0].close()
        self._arrays = None


def training_dataset(rows: FeatureRows, batch_size: int, *, shuffle: bool = False, seed: int = 0):
    """Batches of cached features for the head, gathered row by row: a shuffle permutes indices and
    each batch copies only its own rows. ``from_tensor_slices(...).shuffle(len)`` held every feature
    vector twice more (a tensor copy and a full shuffle buffer: 1 GB for the book's flattened
    features of 2,000 images at 224 px)."""
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


def cached_features(*, key: str, subset: str, compute, emit: Sink = discard) -> tuple[Path, np.ndarray, bool]:
    """Return ``(cache file, labels, reused)`` for one split, computing on a miss: ``compute(path)``
    writes the file and returns the labels (:func:`extract_to`). A corrupt file is reported and rebuilt."""
    path = cache_path(key, subset)
    try:
        labels = verify_cached(path)
    except ValueError as error:
        emit(Warning_(f"feature cache {path.name} is corrupt ({error}); rebuilding it"))
        labels = None
    if labels is not None:
        emit(Status(f"reusing cached {subset} features ({len(labels)} images)"))
        return path, labels, True
    return path, compute(path), False


def describe(key: str) -> dict[str, Any]:
    return {"key": key, "folder": str(features_cache_dir())}


__all__ = ["cache_key", "cached_features", "extract", "extract_to", "FeatureFile", "FeatureRows", "training_dataset",
           "weights_identity", "load_cached", "verify_cached", "save_cached", "write_cache", "cache_path", "JobCancelled"]
