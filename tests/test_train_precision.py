"""Training in the precision asked for (or the one "auto" finds for this machine), recorded in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagegen import make_shapes_dataset
from quick_runs import quick_config
from test_train_tinybase import tiny_base  # noqa: F401 (fixture)

from engine.errors import InvalidSetting
from engine.precision import choose_precision
from engine.train.config import TrainConfig
from engine.train.strategies import train


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_dataset(tmp_path_factory.mktemp("data") / "shapes", per_class=16, size=40)


def _train(data, out, **kw):
    return train(quick_config(data, out, **{"epochs": 2, **kw}))


def _layer_policies(run_dir: Path) -> dict[str, str]:
    from engine.tf_runtime import keras

    def walk(model, prefix=""):
        for layer in model.layers:
            yield prefix + layer.name, layer.dtype_policy.name
            if hasattr(layer, "layers"):
                yield from walk(layer, f"{prefix}{layer.name}/")

    return dict(walk(keras().models.load_model(str(Path(run_dir) / "last.keras"))))


@pytest.mark.parametrize("strategy", ["scratch", "features"])
def test_mixed_bfloat16_trains_computes_in_bfloat16_and_says_so(shapes, tmp_path, tiny_base, strategy):
    from engine.tf_runtime import keras

    result = _train(shapes, tmp_path / "run", strategy=strategy, base=tiny_base, precision="mixed_bfloat16")
    assert result.status == "finished" and all(v == v for v in result.history["loss"])  # no NaN
    manifest = json.loads((Path(result.run_dir) / "manifest.json").read_text())
    assert manifest["precision"] == {"policy": "mixed_bfloat16", "reason": "chosen explicitly"}
    policies = _layer_policies(result.run_dir)
    # the layers ConvScope builds compute in bfloat16; the classifier stays float32; a loaded base keeps
    # the precision it was saved in (docs/benchmarks_training.md)
    built = {"scratch": ["conv1", "dense"], "features": ["head/head_dense"]}[strategy]
    assert [policies[name] for name in built] == ["mixed_bfloat16"] * len(built)
    assert policies["predictions" if strategy == "scratch" else "head/head_predictions"] == "float32"
    assert keras().mixed_precision.global_policy().name == "float32"  # restored for whatever runs next


def test_float32_is_the_default_and_auto_records_this_machines_choice(shapes, tmp_path):
    plain = _train(shapes, tmp_path / "plain")
    manifest = json.loads((Path(plain.run_dir) / "manifest.json").read_text())
    assert manifest["precision"]["policy"] == "float32"
    assert set(_layer_policies(plain.run_dir).values()) == {"float32"}
    auto = _train(shapes, tmp_path / "auto", precision="auto")
    recorded = json.loads((Path(auto.run_dir) / "manifest.json").read_text())["precision"]
    assert recorded == choose_precision("auto").to_dict() and recorded["reason"].startswith("auto: ")


def test_an_unknown_precision_is_refused_before_anything_runs(shapes, tmp_path):
    with pytest.raises(InvalidSetting, match="precision 'half'"):
        TrainConfig(data=str(shapes), precision="half").validate()


def test_the_cli_passes_the_choice_through(shapes, tmp_path, capsys):
    from engine.cli import main

    out = tmp_path / "cli"
    code = main(["train", "--data", str(shapes), "--image-size", "48", "--epochs", "1", "--batch-size", "8",
                 "--no-tensorboard", "--precision", "mixed_bfloat16", "--out", str(out)])
    assert code == 0
    assert json.loads((out / "manifest.json").read_text())["precision"]["policy"] == "mixed_bfloat16"
    assert json.loads((out / "config.json").read_text())["precision"] == "mixed_bfloat16"
