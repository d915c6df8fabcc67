"""TrainConfig.validate() rejects absurd settings with a message naming the setting and the fix."""

from __future__ import annotations

import dataclasses

import pytest

from imagegen import make_shapes_dataset
from test_train_tinybase import tiny_base  # noqa: F401 (fixture)

from engine.errors import ConvScopeError, DatasetError, InvalidSetting
from engine.train.config import TrainConfig


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return str(make_shapes_dataset(tmp_path_factory.mktemp("cfg") / "d", per_class=4, size=32))


@pytest.mark.parametrize("changes, words", [
    ({"image_size": 31}, "image size 31"),
    ({"image_size": 2048}, "image size 2048"),
    ({"image_size": 40, "preset": "book-scratch"}, "image size 40"),  # below book-scratch's 46
    ({"batch_size": 0}, "batch size 0"),
    ({"epochs": 0}, "epochs 0"),
    ({"learning_rate": 0.0}, "learning rate 0.0"),
    ({"learning_rate": float("nan")}, "learning rate nan"),
    ({"strategy": "magic"}, "unknown strategy 'magic'"),
    ({"strategy": "features", "base": "nope"}, "unknown base 'nope'"),
    ({"preset": "nope"}, "unknown preset 'nope'"),
    ({"strategy": "features", "augment": True}, "cannot augment"),
    ({"augment": True, "augmentation": "wild"}, "unknown augmentation preset 'wild'"),
    ({"validation_fraction": 0.6, "test_fraction": 0.5}, "no training images"),
    ({"patience": -1}, "patience -1"),
    ({"head_from_run": "/nowhere"}, "only used by the finetune"),
])
def test_invalid_settings(data, changes, words):
    with pytest.raises(InvalidSetting) as info:
        dataclasses.replace(TrainConfig(data=data), **changes).validate()
    assert words in str(info.value)
    assert info.value.hint  # says what to do


def test_missing_data_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        TrainConfig(data=str(tmp_path / "missing")).validate()


def test_base_minimum_size_applies(data, tiny_base):
    from engine.bases.registry import get_base

    spec = get_base("xception")  # needs at least 71 pixels
    with pytest.raises(InvalidSetting, match="image size 64"):
        TrainConfig(data=data, strategy="features", base=spec.name, image_size=64).validate()


def test_existing_run_folder_is_not_overwritten(data, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with pytest.raises(ConvScopeError, match="--resume"):
        TrainConfig(data=data, out=str(run)).validate()


def test_resolved_fills_strategy_defaults(data, tiny_base):
    scratch = TrainConfig(data=data).resolved()
    assert (scratch.image_size, scratch.augment, scratch.learning_rate) == (150, False, 1e-4)
    feats = TrainConfig(data=data, strategy="features", base=tiny_base).resolved()
    assert feats.image_size == 32 and feats.learning_rate == 1e-3 and feats.augment is False
    book = TrainConfig(data=data, strategy="features", base=tiny_base, recipe="book").resolved()
    assert book.learning_rate == 2e-5
    ft = TrainConfig(data=data, strategy="finetune", base=tiny_base, epochs=4).resolved()
    assert ft.augment is True and ft.learning_rate == 1e-5 and ft.head_epochs == 4
    assert TrainConfig.from_dict(ft.to_dict()) == ft
