"""Every training strategy learns on tiny data, writes a complete run folder and obeys cancel."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from imagegen import make_shapes_dataset
from test_train_tinybase import tiny_base  # noqa: F401 (fixture)

from engine.errors import InvalidSetting
from engine.events import (BatchProgress, CancelToken, CheckpointSaved, EpochEnded, RunCancelled, RunFinished,
                           RunStarted)
from engine.train import rundir
from engine.train.config import TrainConfig
from engine.train.strategies import train


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", per_class=24, size=40)


def _config(data, tmp_path, **kw):
    base = dict(data=str(data), image_size=48, batch_size=8, epochs=6, patience=0, seed=1,
                out=str(tmp_path / "run"), tensorboard=False)
    base.update(kw)
    return TrainConfig(**base)


def _collect():
    events = []
    return events, events.append


def _load(path):
    from engine.tf_runtime import keras
    return keras().models.load_model(str(path))


def test_scratch_learns_and_writes_a_complete_run_folder(shapes, tmp_path):
    events, sink = _collect()
    cfg = _config(shapes, tmp_path, preset="book-scratch", learning_rate=1e-3, tensorboard=True)
    result = train(cfg, sink)
    assert result.status == "finished"
    run = Path(result.run_dir)
    loss = result.history["loss"]
    assert len(loss) == 6 and loss[-1] < loss[0]
    for name in ("config.json", "manifest.json", "history.csv", "events.jsonl", "best.keras", "last.keras",
                 "split/train.txt", "split/classes.json"):
        assert (run / name).exists(), name
    assert any((run / "logs").rglob("*tfevents*"))
    config = json.loads((run / "config.json").read_text())
    assert config["classes"] == ["circle", "square"] and config["image_size"] == 48
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seed"] == 1 and manifest["tensorflow"] and manifest["dataset"]["fingerprint"]
    # events: one start, one EpochEnded per epoch with every metric, checkpoints, one finish
    assert isinstance(events[0], RunStarted) or any(isinstance(e, RunStarted) for e in events)
    ended = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.epoch for e in ended] == [1, 2, 3, 4, 5, 6]
    assert set(ended[0].metrics) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert any(isinstance(e, CheckpointSaved) and e.best for e in events)
    assert isinstance(events[-1], RunFinished)
    recorded = [json.loads(line)["event"] for line in (run / "events.jsonl").read_text().splitlines()]
    assert recorded.count("EpochEnded") == 6 and recorded[-1] == "RunFinished"
    # the saved model predicts raw 0..255 images
    model = _load(run / "best.keras")
    out = model.predict(np.full((1, 48, 48, 3), 128.0, "float32"), verbose=0)
    assert out.shape == (1, 1) and 0.0 <= float(out[0, 0]) <= 1.0


def test_same_seed_same_history(shapes, tmp_path):
    a = train(_config(shapes, tmp_path, out=str(tmp_path / "a"), epochs=2, learning_rate=1e-3))
    b = train(_config(shapes, tmp_path, out=str(tmp_path / "b"), epochs=2, learning_rate=1e-3))
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-4)


def test_mini_xception_trains(shapes, tmp_path):
    result = train(_config(shapes, tmp_path, preset="mini-xception", epochs=4, batch_size=12))
    assert result.history["loss"][-1] < result.history["loss"][0]


def test_features_strategy_caches_and_saves_the_full_model(shapes, tmp_path, tiny_base):
    events, sink = _collect()
    cfg = _config(shapes, tmp_path, strategy="features", base=tiny_base, epochs=8, learning_rate=3e-3)
    first = train(cfg, sink)
    assert first.history["loss"][-1] < first.history["loss"][0]
    state = rundir.read_state(first.run_dir)
    assert not any(v["reused"] for v in state["feature_cache"].values())
    full = _load(Path(first.run_dir) / "best.keras")
    assert tuple(full.input.shape[1:]) == (48, 48, 3)  # base + head: takes raw images
    assert any(layer.name == "tiny_base" for layer in full.layers)
    assert full.predict(np.zeros((2, 48, 48, 3), "float32"), verbose=0).shape == (2, 1)
    # second run on the same data: features come from the cache
    second = train(_config(shapes, tmp_path, strategy="features", base=tiny_base, epochs=2,
                           out=str(tmp_path / "run2")))
    state2 = rundir.read_state(second.run_dir)
    assert all(v["reused"] for v in state2["feature_cache"].values())
    assert state2["feature_cache"]["train"]["key"] == state["feature_cache"]["train"]["key"]


def test_corrupt_feature_cache_is_detected_and_rebuilt(shapes, tmp_path, tiny_base):
    from engine.paths import features_cache_dir
    from engine.train.features import load_cached

    train(_config(shapes, tmp_path, strategy="features", base=tiny_base, epochs=1))
    files = sorted(features_cache_dir().glob("*_train.npz"))
    assert len(files) == 1
    good = load_cached(files[0])
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte inside the stored features
    files[0].write_bytes(bytes(data))
    events, sink = _collect()
    result = train(_config(shapes, tmp_path, strategy="features", base=tiny_base, epochs=1,
                           out=str(tmp_path / "again")), sink)
    assert not rundir.read_state(result.run_dir)["feature_cache"]["train"]["reused"]
    assert any("corrupt" in getattr(e, "message", "") for e in events)
    rebuilt = load_cached(files[0])
    np.testing.assert_allclose(rebuilt[0], good[0], rtol=1e-5)


def test_features_augmented_trains_with_frozen_base(shapes, tmp_path, tiny_base):
    cfg = _config(shapes, tmp_path, strategy="features-augmented", base=tiny_base, augment=False,
                  epochs=6, learning_rate=3e-3)
    result = train(cfg)
    assert result.history["loss"][-1] < result.history["loss"][0]
    model = _load(Path(result.run_dir) / "last.keras")
    base = model.get_layer("tiny_base")
    assert not base.trainable_weights  # the base stayed frozen


def test_finetune_continues_epochs_across_phases(shapes, tmp_path, tiny_base):
    events, sink = _collect()
    cfg = _config(shapes, tmp_path, strategy="finetune", base=tiny_base, augment=False, head_epochs=3,
                  epochs=3, head_learning_rate=3e-3, learning_rate=1e-3)
    result = train(cfg, sink)
    rows = rundir.read_history_rows(result.run_dir)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["phase"] for r in rows] == ["head"] * 3 + ["finetune"] * 3
    assert [e.phase for e in events if isinstance(e, EpochEnded)] == ["head"] * 3 + ["finetune"] * 3
    assert result.history["loss"][-1] < result.history["loss"][0]
    model = _load(Path(result.run_dir) / "last.keras")
    base = model.get_layer("tiny_base")
    assert base.get_layer("conv2").trainable and not base.get_layer("conv1").trainable
    assert not base.get_layer("bn1").trainable  # BatchNorm stays frozen


def test_finetune_keeps_batchnorm_of_the_unfrozen_blocks_in_inference_mode(shapes, tmp_path, tiny_base):
    """Fine-tuning from conv1 puts bn1 inside the unfrozen part: its scale and shift stay frozen and
    its moving statistics are never updated from the small dataset's batches (inference mode), while
    the unfrozen convolutions do learn."""
    from test_train_tinybase import build_tiny_base

    cfg = _config(shapes, tmp_path, strategy="finetune", base=tiny_base, augment=False, head_epochs=1,
                  epochs=2, learning_rate=1e-2, finetune_from="conv1")
    result = train(cfg)
    tuned = _load(Path(result.run_dir) / "last.keras").get_layer("tiny_base")
    fresh = build_tiny_base(input_size=48)
    for got, start in zip(tuned.get_layer("bn1").get_weights(), fresh.get_layer("bn1").get_weights()):
        np.testing.assert_array_equal(got, start)  # gamma, beta, moving mean, moving variance
    assert not np.allclose(tuned.get_layer("conv1").get_weights()[0], fresh.get_layer("conv1").get_weights()[0])


def test_finetune_from_unknown_layer_lists_valid_names(shapes, tmp_path, tiny_base):
    cfg = _config(shapes, tmp_path, strategy="finetune", base=tiny_base, augment=False,
                  finetune_from="block99_conv")
    with pytest.raises(InvalidSetting) as info:
        train(cfg)
    assert "block99_conv" in str(info.value) and "conv1" in str(info.value) and "conv2" in str(info.value)


@pytest.fixture
def unthrottled(monkeypatch):
    """Every batch reports BatchProgress; ``unthrottled.callback`` is the run's engine callback."""
    import engine.train.fitting as fitting
    from engine.train import callbacks as cb_module

    original = cb_module.make_engine_callback

    def make(**kw):
        make.callback = original(**{**kw, "max_rate": 1e9})
        return make.callback

    monkeypatch.setattr(fitting, "make_engine_callback", make)
    return make


def test_cancel_at_epoch_end_stops_within_one_batch(shapes, tmp_path, unthrottled):
    token = CancelToken()
    events = []

    def sink(event):
        events.append(event)
        if isinstance(event, EpochEnded) and event.epoch == 2:
            token.cancel()

    result = train(_config(shapes, tmp_path, batch_size=4, epochs=20), sink, token)
    assert result.status == "cancelled"
    per_epoch = next(e.batches for e in events if isinstance(e, BatchProgress))
    assert per_epoch >= 3
    assert unthrottled.callback.batches_run <= 2 * per_epoch + 1  # at most one batch after the cancel
    assert [r["epoch"] for r in rundir.read_history_rows(result.run_dir)] == [1, 2]
    assert isinstance(events[-1], RunCancelled) and events[-1].last_epoch == 2
    assert rundir.read_state(result.run_dir)["status"] == "cancelled"
    _load(Path(result.run_dir) / "last.keras")


def test_cancel_mid_epoch_records_only_finished_epochs(shapes, tmp_path, unthrottled):
    token = CancelToken()
    seen = []

    def sink(event):
        if isinstance(event, BatchProgress):
            seen.append(event)
            if event.epoch == 2 and event.batch == 2:
                token.cancel()

    result = train(_config(shapes, tmp_path, batch_size=4, epochs=20), sink, token)
    assert result.status == "cancelled"
    per_epoch = seen[0].batches
    assert unthrottled.callback.batches_run <= per_epoch + 2 + 1
    with open(Path(result.run_dir) / "history.csv") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [1]  # the partial epoch 2 is not recorded
    _load(Path(result.run_dir) / "last.keras")


def test_cancel_during_feature_extraction(shapes, tmp_path, tiny_base):
    token = CancelToken()

    def sink(event):
        if type(event).__name__ == "Progress" and "features" in event.message:
            token.cancel()

    result = train(_config(shapes, tmp_path, strategy="features", base=tiny_base), sink, token)
    assert result.status == "cancelled" and result.epochs_done == 0
    from engine.paths import features_cache_dir
    assert not list(features_cache_dir().glob("*.npz"))  # nothing half-written
    _load(Path(result.run_dir) / "last.keras")


def test_batch_larger_than_training_set_is_clamped_with_a_warning(shapes, tmp_path):
    events, sink = _collect()
    result = train(_config(shapes, tmp_path, batch_size=500, epochs=1), sink)
    assert result.status == "finished"
    assert any("batch size 500" in getattr(e, "message", "") for e in events)


def test_the_callers_strategy_scope_is_the_one_the_model_trains_in(shapes, tmp_path, monkeypatch):
    from engine.tf_runtime import keras, tf

    fit = keras().Model.fit
    used = []

    def recording_fit(model, *args, **kwargs):
        used.append(model.distribute_strategy)
        return fit(model, *args, **kwargs)

    monkeypatch.setattr(keras().Model, "fit", recording_fit)
    strategy = tf().distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        result = train(_config(shapes, tmp_path, epochs=1))
    assert result.status == "finished"
    assert used and all(s is strategy for s in used)


def test_scratch_with_augmentation_inside_the_model(shapes, tmp_path):
    result = train(_config(shapes, tmp_path, augment=True, augmentation="book", epochs=4, learning_rate=1e-3))
    assert result.history["loss"][-1] < result.history["loss"][0]
    model = _load(Path(result.run_dir) / "last.keras")
    assert model.layers[1].name == "augmentation"
    # augmentation is off at inference: the trained model answers as the same network without the block
    from engine.models.presets import build_preset

    plain = build_preset("book-scratch", 48, 2)
    for layer in plain.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (8, 48, 48, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), plain.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_finetune_reuses_a_finished_features_augmented_run(shapes, tmp_path, tiny_base):
    head_run = train(_config(shapes, tmp_path, strategy="features-augmented", base=tiny_base, augment=False,
                             epochs=3, learning_rate=3e-3, out=str(tmp_path / "head")))
    events, sink = _collect()
    result = train(_config(shapes, tmp_path, strategy="finetune", base=tiny_base, augment=False, epochs=2,
                           head_from_run=head_run.run_dir, out=str(tmp_path / "ft")), sink)
    rows = rundir.read_history_rows(result.run_dir)
    assert [r["phase"] for r in rows] == ["finetune", "finetune"]  # no head phase: it was reused
    assert any("reusing the trained head" in getattr(e, "message", "") for e in events)


def test_memory_estimate_warns_before_training(shapes, tmp_path, monkeypatch):
    import engine.train.fitting as fitting

    monkeypatch.setattr(fitting, "_available_memory", lambda: 4 * 2**20)  # a 4 MiB machine
    events, sink = _collect()
    result = train(_config(shapes, tmp_path, epochs=1, batch_size=16), sink)
    warnings = [e.message for e in events if "out of memory" in getattr(e, "message", "")]
    assert len(warnings) == 1 and "batch size 16" in warnings[0]
    first_epoch = next(i for i, e in enumerate(events) if isinstance(e, EpochEnded))
    assert events.index(next(e for e in events if "out of memory" in getattr(e, "message", ""))) < first_epoch
    assert result.status == "finished"
    # and a realistic machine gets no warning for the same small run
    monkeypatch.setattr(fitting, "_available_memory", lambda: 16 * 2**30)
    events2, sink2 = _collect()
    train(_config(shapes, tmp_path, epochs=1, batch_size=16, out=str(tmp_path / "r2")), sink2)
    assert not [e for e in events2 if "out of memory" in getattr(e, "message", "")]


def test_every_configurable_strategy_has_its_own_registered_module():
    """The CLI/GUI choices (config.STRATEGIES) and the registry name the same strategies, each a
    module of its own with train(ctx); an unknown name is refused with the choices."""
    from engine.train.config import STRATEGIES
    from engine.train.strategies import get_strategy, strategy_names

    assert strategy_names() == list(STRATEGIES)
    trains = {get_strategy(name).train for name in STRATEGIES}
    assert len({fn.__module__ for fn in trains}) == len(STRATEGIES)
    from engine.train.config import TrainConfig

    fresh, reused = TrainConfig(data="d", strategy="finetune"), TrainConfig(data="d", strategy="finetune",
                                                                            head_from_run="r")
    assert get_strategy("finetune").first_phase(fresh, {}) == "head"
    assert get_strategy("finetune").first_phase(fresh, {"phase1_done": True}) == "finetune"
    assert get_strategy("finetune").first_phase(reused, {}) == "finetune"
    with pytest.raises(InvalidSetting, match="choose one of: scratch"):
        get_strategy("no-such-strategy")
