"""Every strategy x augmentation on/off x head-from-run trains on a tiny base (issue 18).

Fine-tuning used to take the first nested model as the base, which is the augmentation block when
augmentation is on: every fine-tune with augmentation failed with "choose one of:" and no names.
Each cell checks what the user relies on: the run finishes, the model holds augmentation exactly
when asked, and fine-tuning unfroze the base from the start layer (BatchNorm kept frozen).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from imagegen import make_shapes_dataset
from test_train_tinybase import tiny_base  # noqa: F401 (fixture)

from engine.errors import InvalidSetting
from engine.train import rundir
from engine.train.config import TrainConfig
from engine.train.strategies import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_dataset(tmp_path_factory.mktemp("matrix") / "shapes", per_class=12, size=36)


def _config(data, out, **kw):
    settings = dict(data=str(data), image_size=48, batch_size=8, epochs=1, head_epochs=1, patience=0, seed=3,
                    out=str(out), tensorboard=False, augmentation="mild")
    settings.update(kw)
    return TrainConfig(**settings)


def _model(run_dir):
    from engine.models.loading import load_keras_file

    return load_keras_file(Path(run_dir) / rundir.LAST)


def _has_augmentation(model) -> bool:
    return any(layer.name == "augmentation" for layer in model.layers)


@pytest.mark.parametrize("augment", [False, True], ids=["no-aug", "aug"])
@pytest.mark.parametrize("strategy", ["scratch", "features-augmented", "finetune"])
def test_strategy_with_and_without_augmentation(strategy, augment, shapes, tmp_path, tiny_base):
    result = train(_config(shapes, tmp_path / "run", strategy=strategy, base=tiny_base, augment=augment))
    assert result.status == "finished"
    model = _model(result.run_dir)
    assert _has_augmentation(model) is augment
    if strategy == "finetune":
        assert [r["phase"] for r in rundir.read_history_rows(result.run_dir)] == ["head", "finetune"]
        base = model.get_layer("tiny_base")
        assert base.get_layer("conv2").trainable and not base.get_layer("conv1").trainable
        assert not base.get_layer("bn1").trainable


def test_features_trains_and_refuses_augmentation(shapes, tmp_path, tiny_base):
    result = train(_config(shapes, tmp_path / "run", strategy="features", base=tiny_base, augment=False))
    assert result.status == "finished" and not _has_augmentation(_model(result.run_dir))
    with pytest.raises(InvalidSetting, match="cannot augment"):
        train(_config(shapes, tmp_path / "aug", strategy="features", base=tiny_base, augment=True))


@pytest.fixture(scope="module")
def head_runs(shapes, tmp_path_factory):
    """Finished features-augmented runs, with and without augmentation, to fine-tune from."""
    from test_train_tinybase import NAME, register

    from engine.bases.registry import unregister_base

    register()
    root = tmp_path_factory.mktemp("heads")
    try:
        return {augment: train(_config(shapes, root / f"head-{augment}", strategy="features-augmented",
                                       base=NAME, augment=augment)).run_dir
                for augment in (False, True)}
    finally:
        unregister_base(NAME)


@pytest.mark.parametrize("augment", [False, True], ids=["finetune-no-aug", "finetune-aug"])
@pytest.mark.parametrize("source_augment", [False, True], ids=["head-no-aug", "head-aug"])
def test_finetune_from_a_features_augmented_run(source_augment, augment, head_runs, shapes, tmp_path, tiny_base):
    events = []
    result = train(_config(shapes, tmp_path / "ft", strategy="finetune", base=tiny_base, augment=augment,
                           head_from_run=head_runs[source_augment]), events.append)
    assert [r["phase"] for r in rundir.read_history_rows(result.run_dir)] == ["finetune"]
    started = next(e for e in events if type(e).__name__ == "RunStarted")
    assert (started.epochs, started.phase) == (1, "finetune")  # no head phase announced: the head is reused
    model = _model(result.run_dir)
    assert _has_augmentation(model) is augment  # this run's setting, whatever the head run used
    base = model.get_layer("tiny_base")
    assert base.get_layer("conv2").trainable and not base.get_layer("conv1").trainable


@pytest.mark.parametrize("augment", [False, True], ids=["no-aug", "aug"])
def test_missing_start_layer_lists_the_base_layers(augment, shapes, tmp_path, tiny_base):
    with pytest.raises(InvalidSetting) as info:
        train(_config(shapes, tmp_path / "run", strategy="finetune", base=tiny_base, augment=augment,
                      finetune_from="block99_conv"))
    text = str(info.value)
    assert "block99_conv" in text and "conv1" in text and "conv2" in text
