"""`convscope export`: the command line as the issue writes it, its output and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagegen import make_shapes_dataset

from engine.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from engine.train.config import TrainConfig
    from engine.train.strategies import train

    root = tmp_path_factory.mktemp("cli_export")
    data = make_shapes_dataset(root / "shapes", per_class=8, size=48)
    result = train(TrainConfig(data=str(data), image_size=48, batch_size=8, epochs=1, patience=0,
                               out=str(root / "run"), tensorboard=False))
    return Path(result.run_dir)


@pytest.mark.slow
def test_export_json_reports_the_files_and_the_parity_check(trained, tmp_path, capsys):
    out = tmp_path / "exported"
    code = main(["export", str(trained), "--format", "litert", "--quantize", "none", "--out", str(out), "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(out) and report["artifact"] == str(out / "model.tflite")
    assert report["size_bytes"] == (out / "model.tflite").stat().st_size
    assert report["parity"]["passed"] and report["parity"]["max_abs_diff"] <= 1e-4
    assert report["parity"]["images"] == 4  # the run's test split: 2 classes x 2
    card = json.loads((out / "model_card.json").read_text())
    assert card["class_names"] == ["circle", "square"] and card["format"] == "litert"


@pytest.mark.slow
def test_export_text_output_then_refuses_to_overwrite(trained, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(trained / "best.keras"), "--format", "onnx", "--out", str(out),
                 "--images", str(trained.parent / "shapes")]) == 0
    text = capsys.readouterr().out
    assert f"onnx export written to {out}" in text
    assert "checked on 16 images" in text and "top-1 agreement 100.00%" in text
    assert "accuracy" in text  # class folders named like the classes: labelled
    assert main(["export", str(trained), "--format", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and "--force" in err


@pytest.mark.parametrize("args, expected", [
    (["--format", "tflite"], "invalid choice: 'tflite'"),
    (["--format", "litert", "--quantize", "int4"], "invalid choice: 'int4'"),
    (["--format", "savedmodel", "--quantize", "int8"], "format 'savedmodel' has no 'int8' quantization"),
])
def test_bad_format_or_quantization_exit_2_with_one_line(args, expected, tmp_path, capsys):
    try:
        code = main(["export", str(tmp_path), *args, "--out", str(tmp_path / "out")])
    except SystemExit as stop:  # argparse refuses choices itself
        code = stop.code
    assert code == 2
    assert not (tmp_path / "out").exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err
