"""The features strategy's arrays: extracted into one array, checksummed in place, batched for the head."""

from __future__ import annotations

import numpy as np
import pytest

from engine.train import features


def _extractor():
    from engine.tf_runtime import keras

    k = keras()
    inputs = k.Input((4, 4, 3))
    return k.Model(inputs, k.layers.Flatten()(inputs * 2.0))


def _dataset(images, labels, batch):
    from engine.tf_runtime import tf

    return tf().data.Dataset.from_tensor_slices((images, labels)).batch(batch)


def test_extract_fills_every_row_in_order_with_a_short_last_batch():
    images = np.random.default_rng(0).uniform(0, 255, (10, 4, 4, 3)).astype("float32")
    labels = np.arange(10, dtype="float32")
    got, got_labels = features.extract(_extractor(), _dataset(images, labels, 4), 3, 10)
    assert got.dtype == np.float32 and got.shape == (10, 48)
    np.testing.assert_array_equal(got, images.reshape(10, -1) * 2)
    np.testing.assert_array_equal(got_labels, labels)


def test_extract_refuses_a_dataset_shorter_than_announced():
    images = np.zeros((3, 4, 4, 3), "float32")
    with pytest.raises(ValueError, match="gave 3 images, expected 5"):
        features.extract(_extractor(), _dataset(images, np.zeros(3, "float32"), 2), 2, 5)


def test_a_changed_feature_changes_the_checksum(tmp_path):
    x, y = np.random.default_rng(1).normal(size=(6, 5)).astype("float32"), np.arange(6, dtype="float32")
    path = tmp_path / "c.npz"
    features.save_cached(path, x, y)
    loaded = features.load_cached(path)
    np.testing.assert_array_equal(loaded[0], x)
    changed = x.copy()
    changed[3, 2] += 1e-3
    assert features._checksum(changed, y) != features._checksum(x, y)


def test_head_batches_cover_every_vector_once_with_its_label_and_reshuffle_each_epoch():
    x = np.arange(50, dtype="float32").reshape(25, 2)
    y = np.arange(25, dtype="float32") * 10
    store = features.FeatureRows(x, y)
    ds = features.training_dataset(store, 4, shuffle=True, seed=3)
    epochs = []
    for _ in range(2):
        rows, labels = zip(*[(bx.numpy(), by.numpy()) for bx, by in ds])
        assert [len(r) for r in rows] == [4] * 6 + [1]
        rows, labels = np.concatenate(rows), np.concatenate(labels)
        np.testing.assert_array_equal(labels, rows[:, 0] * 5)  # each label stays with its vector
        assert sorted(labels.tolist()) == y.tolist()
        epochs.append(labels.tolist())
    assert epochs[0] != epochs[1] and epochs[0] != y.tolist()
    in_order = np.concatenate([by.numpy() for _, by in features.training_dataset(features.FeatureRows(x, y), 4)])
    np.testing.assert_array_equal(in_order, y)
    store.release()  # the strategy's step once the head is trained: nothing large stays reachable
    with pytest.raises(Exception, match="released"):
        next(iter(ds))
