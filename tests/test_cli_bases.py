"""``convscope bases`` and ``convscope predict`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


from engine.bases.registry import all_bases
from engine.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "resources" / "samples"


def test_bases_lists_every_base_with_its_facts(capsys):
    assert main(["bases"]) == 0
    out = capsys.readouterr().out
    for spec in all_bases():
        assert spec.name in out and spec.label in out and spec.last_conv_layer in out
    assert "fine-tuned for edge detection (not ImageNet)" in out
    assert "top_activation" in out and "block6a_expand_conv" in out


def test_bases_json(capsys):
    assert main(["bases", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["efficientnet-lite0"]["imagenet_head"] is True
    assert rows["efficientnet-lite0"]["gradcam_layer"] == "top_activation"
    assert rows["vgg16-edges"]["input_size"] == 150 and rows["vgg16-edges"]["finetune_from"] == "block5_conv1"
    assert set(rows) >= {"efficientnet-lite0", "vgg16-edges", "vgg16"}


def test_bases_does_not_import_tensorflow():
    code = ("import sys; from engine.cli import main; import io, contextlib; "
            "buf = io.StringIO(); contextlib.redirect_stdout(buf).__enter__(); rc = main(['bases']); "
            "sys.__stdout__.write(f\"{rc} {'tensorflow' in sys.modules}\")")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "0 False"


def test_predict_prints_names_and_probabilities(cached, capsys):
    assert main(["predict", "efficientnet-lite0", str(SAMPLES / "coffee.jpg"), "--top", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("coffee.jpg") and len(lines) == 6
    assert "espresso (967)" in lines[1]
    assert float(lines[1].split("%")[0]) > 80


def test_predict_json(cached, capsys):
    paths = [str(SAMPLES / "chelsea.jpg"), str(SAMPLES / "coffee.jpg")]
    assert main(["predict", "efficientnet-lite0", *paths, "--top", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "imagenet"
    cat, coffee = doc["predictions"]
    assert all(281 <= entry["index"] <= 285 for entry in cat["top"])
    assert coffee["top"][0]["name"] == "espresso"


def test_predict_unreadable_image_is_one_line_exit_2(cached, tmp_path, capsys):
    broken = tmp_path / "holiday.jpg"
    broken.write_text("not an image")
    assert main(["predict", "efficientnet-lite0", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holiday.jpg" in err


def test_predict_unsafe_model_names_the_flag(tmp_path, capsys):
    import keras

    inputs = keras.Input((4,))
    path = tmp_path / "code.keras"
    keras.Model(inputs, keras.layers.Lambda(lambda x: x + 1)(inputs)).save(path)
    assert main(["predict", str(path), str(SAMPLES / "coffee.jpg")]) == 2
    err = capsys.readouterr().err
    assert "code.keras" in err and "--trust-model" in err and err.count("\n") == 1
