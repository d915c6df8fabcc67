"""The base inside a classifier is found by what it is (engine.bases.locate), for every consumer:
fine-tuning, Grad-CAM's default layer and the layer listing (issue 18)."""

from __future__ import annotations

import json

import pytest

from imagegen import make_shapes_dataset
from test_train_tinybase import tiny_base  # noqa: F401 (fixture)

from engine.bases.locate import base_for_finetuning, locate_base
from engine.bases.registry import all_bases, get_base
from engine.errors import InvalidSetting


def _classifier(base_name: str, size: int, augment: bool):
    """A features-augmented classifier as the strategies build it: [augmentation] → base → head."""
    from engine.data.augment import build_augmentation
    from engine.models.presets import build_head, build_transfer_model, feature_dim

    base = get_base(base_name).build(include_top=False, input_size=size)
    head = build_head(feature_dim(base, "avg"), 2)
    return build_transfer_model(base, head, "avg", augmentation=build_augmentation("mild", 0) if augment else None)


@pytest.mark.parametrize("augment", [False, True], ids=["no-aug", "aug"])
def test_tiny_base_is_found_behind_the_augmentation_block(augment, tiny_base):
    model = _classifier(tiny_base, 32, augment)
    assert (model.layers[1].name == "augmentation") is augment  # the block the old lookup took
    found = locate_base(model, tiny_base)
    assert found.path == "tiny_base" and found.spec.name == tiny_base
    assert base_for_finetuning(model, tiny_base, "conv2").model is model.get_layer("tiny_base")


def test_unregistered_base_is_found_by_the_start_layer(tiny_base):
    model = _classifier(tiny_base, 32, augment=True)
    from engine.bases.registry import unregister_base

    unregister_base(tiny_base)  # e.g. a model trained where a base was registered that is not here
    assert locate_base(model) is None
    assert locate_base(model, layer="conv1").path == "tiny_base"
    assert base_for_finetuning(model, "tiny-base", "conv1").path == "tiny_base"


def test_missing_start_layer_names_the_layers_to_choose_from(tiny_base):
    model = _classifier(tiny_base, 32, augment=True)
    with pytest.raises(InvalidSetting) as info:
        base_for_finetuning(model, tiny_base, "block99")
    assert str(info.value).endswith("choose one of: conv1, conv2")


def test_a_model_without_a_nested_base_is_refused_plainly(tiny_base):
    from engine.models.presets import build_preset

    model = build_preset("book-scratch", 64, 2)
    with pytest.raises(InvalidSetting, match="no nested convolutional base"):
        base_for_finetuning(model, tiny_base, "conv2")


def test_grad_cam_default_layer_is_the_bases_behind_augmentation(tiny_base):
    from engine.inspect.cam import default_cam_layer

    assert default_cam_layer(_classifier(tiny_base, 32, augment=True)) == "tiny_base/conv2"


def _bases_with_weights() -> list[str]:
    return [spec.name for spec in all_bases() if spec.weights_status().present]


@pytest.mark.slow
@pytest.mark.parametrize("name", _bases_with_weights())
def test_every_registry_base_with_weights_is_found_for_finetuning(name, cached):
    spec = get_base(name)
    model = _classifier(name, max(spec.min_input_size, 32), augment=True)
    found = base_for_finetuning(model, name, spec.finetune_from)
    assert found.path == spec.keras_name and found.spec.name in {name, *[s.name for s in all_bases()
                                                                         if s.keras_name == spec.keras_name]}
    from engine.inspect.cam import default_cam_layer

    assert default_cam_layer(model) == f"{spec.keras_name}/{spec.last_conv_layer}"


def test_layer_listing_example_path_is_inside_the_base(tiny_base, tmp_path, capsys):
    from engine.cli import main

    path = tmp_path / "augmented.keras"
    _classifier(tiny_base, 32, augment=True).save(path)
    assert main(["layers", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].endswith("--layer tiny_base/conv2")


@pytest.mark.slow
def test_cli_finetune_with_augmentation_on_a_real_base(cached, tmp_path, capsys):
    """The issue's command, on a tiny dataset at the base's smallest size: EfficientNet-Lite0 with
    real ImageNet weights, fine-tuning from the registry's block6a_expand_conv, augmentation on."""
    from engine.cli import main

    data = make_shapes_dataset(tmp_path / "shapes", per_class=8, size=40)
    out = tmp_path / "run"
    code = main(["train", "--data", str(data), "--strategy", "finetune", "--base", "efficientnet-lite0",
                 "--image-size", "32", "--epochs", "1", "--head-epochs", "1", "--batch-size", "8",
                 "--out", str(out), "--no-tensorboard", "--json-events"])
    assert code == 0, capsys.readouterr().err
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["phase"] for e in events if e["event"] == "EpochEnded"] == ["head", "finetune"]
    assert events[-1]["event"] == "RunFinished"
    config = json.loads((out / "config.json").read_text())
    assert config["augment"] is True
    from engine.models.loading import load_keras_file

    model = load_keras_file(out / "last.keras")
    assert model.layers[1].name == "augmentation"
    base = model.get_layer("efficientnet_lite0")
    assert base.get_layer("block6a_expand_conv").trainable and not base.get_layer("block5a_expand_conv").trainable
