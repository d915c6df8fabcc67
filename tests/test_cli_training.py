"""`convscope train/evaluate/runs/summary`: useful output, and one clear line + exit 2 for bad input."""

from __future__ import annotations

import json

import pytest

from imagegen import make_shapes_dataset
from test_train_tinybase import tiny_base  # noqa: F401 (fixture)

from engine.cli import main


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_dataset(tmp_path_factory.mktemp("cli") / "shapes", per_class=16, size=48)


def _error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("args, expected", [
    (["train", "--data", "/no/such/folder"], "does not exist"),
    (["train", "--data", "{data}", "--image-size", "16"], "image size 16"),
    (["train", "--data", "{data}", "--strategy", "features", "--base", "no-such-base"], "unknown base 'no-such-base'"),
    (["train", "--data", "{data}", "--batch-size", "0"], "batch size 0"),
    (["train", "--data", "{data}", "--epochs", "0"], "epochs 0"),
    (["train", "--data", "{data}", "--learning-rate", "-1"], "learning rate -1"),
    (["train", "--data", "{data}", "--preset", "resnet-9000"], "unknown preset"),
    (["train", "--data", "{one_class}"], "class"),
    (["summary", "{not_keras}"], "not_a_model.keras"),
    (["evaluate", "{data}"], "not a ConvScope run folder"),
    (["runs", "--root", "/no/such/runs"], "does not exist"),
])
def test_bad_arguments_exit_2_with_one_line(args, expected, shapes, tmp_path, capsys):
    one_class = make_shapes_dataset(tmp_path / "one", per_class=6, classes=("circle",))
    not_keras = tmp_path / "not_a_model.keras"
    not_keras.write_bytes(b"this is not a zip file")
    argv = [a.format(data=shapes, one_class=one_class, not_keras=not_keras) for a in args]
    assert main(argv) == 2
    assert expected in _error_line(capsys)


def test_unwritable_run_folder_is_rejected(shapes, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if __import__("os").access(locked, __import__("os").W_OK):
            pytest.skip("running as a user who can write anywhere")
        assert main(["train", "--data", str(shapes), "--out", str(locked / "run")]) == 2
        assert "cannot be written" in _error_line(capsys)
    finally:
        locked.chmod(0o700)


def test_train_evaluate_runs_in_the_cli(shapes, tmp_path, capsys):
    run = tmp_path / "runs" / "r1"
    code = main(["train", "--data", str(shapes), "--image-size", "48", "--epochs", "2", "--batch-size", "8",
                 "--out", str(run), "--no-tensorboard"])
    assert code == 0
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "epoch 2/2" in out and "finished" in out
    assert main(["evaluate", str(run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["count"] == 8
    assert main(["runs", "--root", str(tmp_path / "runs"), "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in runs] == ["r1"]
    assert runs[0]["status"] == "finished" and runs[0]["epochs_done"] == 2 and runs[0]["test_accuracy"] is not None
    assert main(["runs", "--root", str(tmp_path / "runs")]) == 0
    assert "r1" in capsys.readouterr().out


def test_json_events_are_one_object_per_line(shapes, tmp_path, capsys, tiny_base):
    code = main(["train", "--data", str(shapes), "--strategy", "features", "--base", tiny_base, "--image-size", "32",
                 "--epochs", "2", "--out", str(tmp_path / "run"), "--json-events", "--no-tensorboard"])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    names = [e["event"] for e in events]
    assert "RunStarted" in names and names.count("EpochEnded") == 2 and names[-1] == "RunFinished"


def test_summary_of_the_book_preset(capsys):
    assert main(["summary", "--preset", "book-scratch", "--image-size", "150", "--classes", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["total_params"] == 3_453_121
    conv = [row for row in summary["layers"] if row["class"] == "Conv2D"]
    assert [row["output_shape"] for row in conv][0] == [None, 148, 148, 32]
    assert main(["summary", "--preset", "book-scratch", "--image-size", "150"]) == 0
    assert "3,453,121" in capsys.readouterr().out


def test_summary_of_a_run_folder(shapes, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(shapes), "--image-size", "48", "--epochs", "1", "--out", str(run),
                 "--no-tensorboard"]) == 0
    capsys.readouterr()
    assert main(["summary", str(run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["layers"][-1]["output_shape"] == [None, 1]


def test_help_text_on_each_command(capsys):
    for command in ("train", "evaluate", "runs", "summary", "demo"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        assert len(capsys.readouterr().out) > 200
