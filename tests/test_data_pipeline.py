"""The tf.data pipeline: shapes, dtypes, labels, exact pixels on both decode routes, robustness."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engine.data import pipeline
from engine.data.images import read_rgb_resized
from engine.data.pipeline import make_dataset, suggest_cache
from engine.data.scan import ScanConfig, scan
from engine.errors import DatasetError
from engine.events import Warning_
from imagegen import BAD_FILE_WRITERS, ODD_FILE_WRITERS, file_hashes, make_shapes_dataset, write_exif_rotated_jpeg


def _batches(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_binary_labels_are_float_column(tmp_path):
    items = scan(ScanConfig(str(make_shapes_dataset(tmp_path / "d", per_class=5, size=40)))).files["all"]
    batches = _batches(make_dataset(items, 32, 4, num_classes=2))
    assert [x.shape for x, _ in batches] == [(4, 32, 32, 3)] * 2 + [(2, 32, 32, 3)]
    assert all(x.dtype == np.float32 and y.dtype == np.float32 and y.shape == (len(x), 1) for x, y in batches)
    labels = np.concatenate([y[:, 0] for _, y in batches])
    assert labels.tolist() == [label for _, label in items]
    pixels = np.concatenate([x for x, _ in batches])
    assert pixels.min() >= 0 and pixels.max() <= 255 and pixels.max() > 200
    assert np.array_equal(pixels, np.round(pixels))  # integer values, as decoded


def test_multiclass_labels_are_sparse_int(tmp_path):
    root = make_shapes_dataset(tmp_path / "d", per_class=3, size=24, classes=("a", "b", "c"), fmt="jpg")
    items = scan(ScanConfig(str(root))).files["all"]
    batches = _batches(make_dataset(items, 16, 4, num_classes=3, drop_remainder=True))
    assert len(batches) == 2
    assert all(y.dtype == np.int32 and y.shape == (4,) for _, y in batches)


def test_fast_and_pillow_routes_give_the_same_pixels(tmp_path):
    root = make_shapes_dataset(tmp_path / "d", per_class=3, size=50, fmt="jpg")
    make_shapes_dataset(root, per_class=3, size=50, fmt="png", seed=1)
    unscanned = sorted((str(p), 0) for p in root.rglob("*.*"))
    assert all(pipeline._route(p.encode()) == pipeline._ROUTE_PIL for p, _ in unscanned)
    pil_pixels = _batches(make_dataset(unscanned, 32, 64, num_classes=2))[0][0]
    scan(ScanConfig(str(root)))
    routes = Counter(int(pipeline._route(p.encode())) for p, _ in unscanned)
    assert routes == {pipeline._ROUTE_JPEG: 6, pipeline._ROUTE_PNG: 6}
    fast_pixels = _batches(make_dataset(unscanned, 32, 64, num_classes=2))[0][0]
    assert np.array_equal(pil_pixels, fast_pixels)
    for (path, _), pixels in zip(unscanned, fast_pixels):  # prediction reads images the same way (±1 level)
        assert np.abs(pixels - read_rgb_resized(path, 32)).max() <= 1


def test_exif_rotated_file_comes_out_rotated(tmp_path):
    path = write_exif_rotated_jpeg(tmp_path / "r.jpg")
    (image,), _ = _batches(make_dataset([(str(path), 0)], 20, 1, num_classes=2))[0]
    assert image[:8].mean() > 200 and image[12:].mean() < 50  # white top half, black bottom half


def test_every_odd_file_decodes(tmp_path):
    items = [(str(writer(tmp_path)), 0) for writer in ODD_FILE_WRITERS.values()]
    (images, _), = _batches(make_dataset(items, 24, len(items), num_classes=2))
    assert images.shape == (len(items), 24, 24, 3)
    assert all(image.max() > 0 for image in images)


def test_vanished_and_changed_files_give_black_images_and_warnings(tmp_path):
    root = make_shapes_dataset(tmp_path / "d", per_class=3, size=32, fmt="jpg")
    items = scan(ScanConfig(str(root))).files["all"]
    vanished, changed = Path(items[1][0]), Path(items[4][0])
    vanished.unlink()
    changed.write_bytes(b"overwritten after the scan")
    events = []
    images, labels = _batches(make_dataset(items, 16, 6, num_classes=2, emit=events.append))[0]
    assert images.shape[0] == 6 and labels[:, 0].tolist() == [label for _, label in items]
    assert images[1].max() == 0 and images[4].max() == 0 and images[0].max() > 0
    warned = [e.message for e in events if isinstance(e, Warning_)]
    assert len(warned) == 2 and str(vanished) in warned[0] + warned[1] and str(changed) in warned[0] + warned[1]


def test_shuffle_is_seeded_and_changes_every_epoch(tmp_path):
    items = scan(ScanConfig(str(make_shapes_dataset(tmp_path / "d", per_class=20, size=16)))).files["all"]

    def epoch_orders(dataset):
        return [tuple(int(v) for v in np.concatenate([x.reshape(len(x), -1).sum(1) for x, _ in _batches(dataset)]))
                for _ in range(2)]

    first, second = epoch_orders(make_dataset(items, 16, 8, num_classes=2, shuffle=True, seed=7))
    assert first != second and sorted(first) == sorted(second)
    assert epoch_orders(make_dataset(items, 16, 8, num_classes=2, shuffle=True, seed=7))[0] == first


@pytest.mark.parametrize("cache", ["memory", "file"])
def test_cache_gives_the_same_batches(tmp_path, cache):
    items = scan(ScanConfig(str(make_shapes_dataset(tmp_path / "d", per_class=4, size=16)))).files["all"]
    plain = _batches(make_dataset(items, 16, 3, num_classes=2))
    target = "memory" if cache == "memory" else str(tmp_path / "run" / "cache" / "train")
    cached = make_dataset(items, 16, 3, num_classes=2, cache=target)
    for _ in range(2):
        got = _batches(cached)
        assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(plain, got))
    if cache == "file":
        assert any(p.name.endswith(".index") for p in (tmp_path / "run" / "cache").iterdir())


def test_pipeline_epoch_modifies_no_file(tmp_path):
    root = make_shapes_dataset(tmp_path / "d", per_class=3, size=24, fmt="jpg")
    for writer in ODD_FILE_WRITERS.values():
        writer(root / "circle")
    for name in ("truncated-jpeg", "zero-bytes", "corrupt-png-data"):
        BAD_FILE_WRITERS[name][0](root / "square")
    before = file_hashes(root)
    result = scan(ScanConfig(str(root)))
    items = result.files["all"] + [(issue.path, 1) for issue in result.unusable]
    _batches(make_dataset(items, 16, 8, num_classes=2, shuffle=True, cache=str(tmp_path / "cache" / "c")))
    assert file_hashes(root) == before


def test_empty_subset_is_a_dataset_error():
    with pytest.raises(DatasetError):
        make_dataset([], 32, 4, num_classes=2)


def test_suggest_cache_prefers_memory_for_small_sets(tmp_path):
    assert suggest_cache(2000, 150, tmp_path / "c") == "memory"
    assert suggest_cache(10**9, 150, tmp_path / "c") == str(tmp_path / "c")


def test_datasets_run_without_tf_data_s_autotuning_model(tmp_path):
    """With the autotuning model on, dropping an iterator (Keras does it at every epoch's start)
    sometimes blocked ~1 s with the CPU idle (bench/bench_epoch_stalls.py): every dataset the
    engine hands to ``fit`` must have it off and still deliver every image, epoch after epoch."""
    items = scan(ScanConfig(str(make_shapes_dataset(tmp_path / "d", per_class=6, size=32)))).files["all"]
    dataset = make_dataset(items, 32, 4, num_classes=2, shuffle=True, cache="memory")
    assert dataset.options().autotune.enabled is False
    for _ in range(3):
        assert sum(len(y) for _, y in _batches(dataset)) == len(items)
    import tensorflow as tf

    head_data = pipeline.without_autotune_model(tf.data.Dataset.range(5).batch(2))
    assert head_data.options().autotune.enabled is False
