"""tf.data input pipeline: parallel decode, resize, cache, shuffle, batch, prefetch.

Images come out as float32 ``[B, S, S, 3]`` with integer values in 0..255 (raw RGB: preprocessing is a
layer inside every model). Resizing is plain bilinear to ``S x S`` (the aspect ratio is NOT kept, as
in ``keras.utils.image_dataset_from_directory``), antialiased when shrinking so large photos do not
alias; :func:`engine.data.images.read_rgb_resized` applies the same filter for prediction.

Decoding takes one of two routes per file, with identical pixels:

- fast: plain upright 8-bit RGB/gray JPEG or PNG that :func:`engine.data.images.inspect_image` (the
  scan) fully decoded and that is unchanged since: TensorFlow decodes it in its own threads
  (``dct_method="INTEGER_ACCURATE"`` matches Pillow exactly).
- Pillow: everything else (EXIF rotation, CMYK, 16-bit, palette, GIF, WebP, TIFF, files not scanned
  in this process), through :func:`engine.data.images.read_rgb`.

A file that vanished or became unreadable after the scan does not stop the epoch: it comes out as a
black image (so batch counts and labels stay aligned) and a :class:`engine.events.Warning_` naming
the file is emitted once through ``emit``. Rescan the folder to leave it out.

Nothing is held in memory unless ``cache="memory"``: with ``cache=None`` or a cache file path, a
25,000-image dataset streams from disk. Caches hold uint8 pixels (4x smaller than float32).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from engine.data.images import UnusableImage, read_rgb, verified_fast
from engine.errors import DatasetError, InvalidSetting
from engine.events import Sink, Warning_, discard
from engine.tf_runtime import tf as _tf

_ROUTE_PIL, _ROUTE_JPEG, _ROUTE_PNG = 0, 1, 2
_SHUFFLE_BUFFER_BYTES = 256 * 2**20  # decoded images held for shuffling after a cache
_MEMORY_CACHE_SHARE = 0.25  # suggest_cache keeps a memory cache under this share of available memory
_BLACK = np.zeros((1, 1, 3), dtype=np.uint8)
# tf.data's autotuning model runs a background thread per iterator, and tearing an iterator down
# (Keras does it at every epoch's start) sometimes waits ~1 s for that thread with the CPU idle:
# py-spy showed the main thread in RootDataset::Iterator::~Iterator. Off, AUTOTUNE still means
# "one parallel call per core" for the maps and a self-sizing prefetch buffer (bench_epoch_stalls.py).
AUTOTUNE_MODEL = False


def _route(path: bytes) -> np.int32:
    name = path.decode("utf-8", "surrogateescape")
    if not verified_fast(name):
        return np.int32(_ROUTE_PIL)
    return np.int32(_ROUTE_PNG if name.lower().endswith(".png") else _ROUTE_JPEG)


class _PilDecoder:
    """Pillow route, called from tf.data threads: unusable files give a black pixel and one warning."""

    def __init__(self, emit: Sink) -> None:
        self._emit = emit
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, path: bytes) -> np.ndarray:
        name = path.decode("utf-8", "surrogateescape")
        try:
            return read_rgb(name)
        except UnusableImage as problem:
            with self._lock:
                first = name not in self._warned
                self._warned.add(name)
            if first:
                self._emit(Warning_(f"{name} changed or vanished since the scan ({problem.reason}); "
                                    "it is fed as a black image: rescan the folder to leave it out"))
            return _BLACK


def _validate(items: Sequence[tuple[str, int]], image_size: int, batch_size: int, num_classes: int, cache) -> None:
    if not items:
        raise DatasetError("this subset has no images", "check the split fractions or add images")
    if image_size < 1:
        raise InvalidSetting(f"image size {image_size}", "use a positive size in pixels, e.g. 150")
    if batch_size < 1:
        raise InvalidSetting(f"batch size {batch_size}", "use a positive batch size, e.g. 32")
    if num_classes < 2:
        raise InvalidSetting(f"num_classes is {num_classes}", "a classifier needs at least two classes")
    bad = [label for _, label in items if not 0 <= int(label) < num_classes]
    if bad:
        raise InvalidSetting(f"label {bad[0]} is outside 0..{num_classes - 1}", "pass the dataset's number of classes")
    if cache not in (None, "memory") and not isinstance(cache, (str, os.PathLike)):
        raise InvalidSetting(f"cache {cache!r}", 'use None, "memory" or a cache file path')


def _disk_cache_prefix(cache: str | os.PathLike, paths: list[str], labels: np.ndarray, image_size: int) -> str:
    """The tf.data cache file prefix: ``cache`` plus a hash of the file list, labels and image
    size, so a changed dataset or size never reads a stale cache. TensorFlow writes the cache's
    index only after a complete pass, so an interrupted epoch leaves no half cache behind; a lock
    file left by a killed process would make TensorFlow refuse the cache, and no other process
    writes a ConvScope run's cache, so stale ones are removed."""
    digest = hashlib.sha256(f"{image_size}\n".encode())
    for path, label in zip(paths, labels.tolist()):
        digest.update(f"{label}\t{path}\n".encode("utf-8", "surrogateescape"))
    prefix = Path(f"{os.fspath(cache)}-{digest.hexdigest()[:12]}")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for stale in prefix.parent.glob(prefix.name + "*.lockfile"):
        stale.unlink(missing_ok=True)
    return str(prefix)


def make_dataset(
    items: Sequence[tuple[str, int]],
    image_size: int,
    batch_size: int,
    *,
    num_classes: int,
    shuffle: bool = False,
    seed: int = 0,
    cache: str | os.PathLike | None = None,
    drop_remainder: bool = False,
    emit: Sink = discard,
):
    """A ``tf.data.Dataset`` of ``(images, labels)`` from ``(path, class index)`` items.

    ``labels`` are float32 ``[B, 1]`` when ``num_classes == 2`` (sigmoid head) and int32 ``[B]``
    otherwise (sparse softmax). ``cache`` is None (stream from disk every epoch), ``"memory"``, or a
    file path prefix for a disk cache (see :func:`suggest_cache`). ``shuffle`` reshuffles every
    epoch, deterministically in ``seed``. ``emit`` receives a Warning_ for files that became unusable.
    """
    _validate(items, image_size, batch_size, num_classes, cache)
    tf = _tf()
    paths = [str(path) for path, _ in items]
    labels = np.array([int(label) for _, label in items], dtype=np.int32)
    if shuffle:  # a fixed mixed base order, so a cache followed by a bounded shuffle buffer still mixes classes
        order = np.random.default_rng(seed).permutation(len(paths))
        paths, labels = [paths[i] for i in order], labels[order]
    decode_with_pil = _PilDecoder(emit)

    def load(path, label):
        def pil():
            pixels = tf.numpy_function(decode_with_pil, [path], tf.uint8, stateful=False)
            return tf.ensure_shape(pixels, [None, None, 3])

        route = tf.numpy_function(_route, [path], tf.int32, stateful=True)
        route = tf.ensure_shape(route, [])
        pixels = tf.switch_case(route, branch_fns={
            _ROUTE_PIL: pil,
            _ROUTE_JPEG: lambda: tf.io.decode_jpeg(tf.io.read_file(path), channels=3, dct_method="INTEGER_ACCURATE"),
            _ROUTE_PNG: lambda: tf.io.decode_png(tf.io.read_file(path), channels=3, dtype=tf.uint8),
        })
        resized = tf.image.resize(pixels, [image_size, image_size], method="bilinear", antialias=True)
        pixels = tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)
        return tf.ensure_shape(pixels, [image_size, image_size, 3]), label

    dataset = tf.data.Dataset.from_tensor_slices((tf.constant(paths, dtype=tf.string), labels))
    if shuffle and cache is None:
        dataset = dataset.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    if cache is not None:
        dataset = dataset.cache("" if cache == "memory" else _disk_cache_prefix(cache, paths, labels, image_size))
        if shuffle:
            buffer = max(64, _SHUFFLE_BUFFER_BYTES // (image_size * image_size * 3))
            dataset = dataset.shuffle(min(len(paths), buffer), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)

    def to_model_inputs(images, batch_labels):
        images = tf.cast(images, tf.float32)
        if num_classes == 2:
            return images, tf.cast(tf.expand_dims(batch_labels, -1), tf.float32)
        return images, batch_labels

    dataset = dataset.map(to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE)
    return without_autotune_model(dataset.prefetch(tf.data.AUTOTUNE))


def without_autotune_model(dataset):
    """``dataset`` with tf.data's autotuning model off (see :data:`AUTOTUNE_MODEL`): every dataset
    that Keras iterates epoch after epoch goes through here."""
    options = _tf().data.Options()
    options.autotune.enabled = AUTOTUNE_MODEL
    return dataset.with_options(options)


def cache_bytes(num_items: int, image_size: int) -> int:
    """Bytes a cache of ``num_items`` images at ``image_size`` holds (uint8 RGB)."""
    return num_items * image_size * image_size * 3


def suggest_cache(num_items: int, image_size: int, cache_file: str | os.PathLike) -> str:
    """``"memory"`` when the decoded images fit in a quarter of the memory available now
    (:func:`engine.memory.available_memory`: the cgroup's headroom too; 2 GiB when unknown),
    else ``cache_file`` as a disk cache prefix (e.g. inside the run folder)."""
    from engine.memory import available_memory  # noqa: PLC0415

    budget = available_memory()
    budget = int(budget * _MEMORY_CACHE_SHARE) if budget else 2 * 2**30
    return "memory" if cache_bytes(num_items, image_size) <= budget else str(cache_file)
