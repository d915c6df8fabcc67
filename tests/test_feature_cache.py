"""The features strategy's cache: extracted straight into its file, checksummed, read back a batch of rows at a time."""

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


def test_extract_fills_every_row_in_order_with_a_short_last_batch(tmp_path):
    images = np.random.default_rng(0).uniform(0, 255, (10, 4, 4, 3)).astype("float32")
    labels = np.arange(10, dtype="float32")
    path = tmp_path / "c.npz"
    returned = features.extract_to(path, _extractor(), _dataset(images, labels, 4), 3, 10)
    got, got_labels = features.load_cached(path)
    assert got.dtype == np.float32 and got.shape == (10, 48)
    np.testing.assert_array_equal(got, images.reshape(10, -1) * 2)
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_array_equal(returned, labels)


def test_extract_refuses_a_dataset_shorter_than_announced_and_leaves_no_file(tmp_path):
    images = np.zeros((3, 4, 4, 3), "float32")
    with pytest.raises(ValueError, match="gave 3 images, expected 5"):
        features.extract_to(tmp_path / "c.npz", _extractor(), _dataset(images, np.zeros(3, "float32"), 2), 2, 5)
    assert list(tmp_path.iterdir()) == []


def test_rows_read_from_the_file_are_the_arrays_rows_in_any_order(tmp_path):
    x = np.random.default_rng(2).normal(size=(9, 3, 2, 5)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(9) % 3]
    path = tmp_path / "c.npz"
    features.save_cached(path, x, y)
    np.testing.assert_array_equal(features.verify_cached(path), y)
    stored = features.FeatureFile(path)
    assert len(stored) == 9 and stored.shape == x.shape and stored.dtype == np.float32
    for indices in ([8, 0, 3, 3], [0], np.arange(9)[::-1], []):
        np.testing.assert_array_equal(stored[np.asarray(indices, dtype=np.int64)], x[np.asarray(indices, dtype=int)])
    with pytest.raises(IndexError):
        stored[[9]]
    stored.close()


def test_a_cache_file_written_by_np_savez_before_streaming_is_still_read(tmp_path):
    x, y = np.random.default_rng(4).normal(size=(5, 7)).astype("float32"), np.arange(5, dtype="float32")
    path = tmp_path / "old.npz"
    np.savez(path, features=x, labels=y, checksum=np.array(features._checksum(x, y)))
    np.testing.assert_array_equal(features.verify_cached(path), y)
    stored = features.FeatureFile(path)
    np.testing.assert_array_equal(stored[[4, 1]], x[[4, 1]])
    stored.close()


def _trained_head_weights(rows, epochs=3):
    from engine.tf_runtime import keras

    k = keras()
    k.utils.set_random_seed(7)
    head = k.Sequential([k.Input(rows.feature_shape), k.layers.Flatten(), k.layers.Dense(8, activation="relu"),
                         k.layers.Dense(3, activation="softmax")])
    head.compile(optimizer=k.optimizers.RMSprop(1e-2), loss="categorical_crossentropy")
    head.fit(features.training_dataset(rows, 8, shuffle=True, seed=5), epochs=epochs, verbose=0)
    return head.get_weights()


def test_a_head_trained_from_the_cache_file_equals_one_trained_from_the_arrays_in_memory(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(45, 2, 2, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 45)]
    x[np.arange(45), 0, 0, y.argmax(1)] += 3.0  # something to learn
    path = tmp_path / "c.npz"
    features.save_cached(path, x, y)
    from_file = features.FeatureRows(features.FeatureFile(path), features.verify_cached(path))
    in_memory = _trained_head_weights(features.FeatureRows(x, y))
    streamed = _trained_head_weights(from_file)
    for a, b in zip(in_memory, streamed, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(in_memory[0], _trained_head_weights(features.FeatureRows(x[::-1].copy(), y), 3)[0])
    from_file.release()
    with pytest.raises(Exception, match="released"):
        from_file(np.arange(2))


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


def test_a_changed_byte_in_the_file_or_a_compressed_file_is_refused_for_a_rebuild(tmp_path):
    x, y = np.random.default_rng(8).normal(size=(6, 50)).astype("float32"), np.arange(6, dtype="float32")
    path = tmp_path / "c.npz"
    features.save_cached(path, x, y)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the stored features
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        features.verify_cached(path)
    np.savez_compressed(path, features=x, labels=y, checksum=np.array(features._checksum(x, y)))
    with pytest.raises(ValueError, match="compressed"):
        features.verify_cached(path)
    assert features.verify_cached(tmp_path / "missing.npz") is None
