"""`convscope layers | activations | filters | gradcam` on a saved model of the book's shape."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from models import book_nested

SIZE = 32


@pytest.fixture()
def model_file(tmp_path):
    model = book_nested(rescale=True, seed=0, widths=(8, 12), names=("conv1", "pool1", "conv2"))
    path = tmp_path / "book.keras"
    model.save(path)
    return path, model


@pytest.fixture()
def image_file(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return path, pixels


def test_layers_json_and_text(model_file, capsys):
    path, _ = model_file
    assert main(["layers", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    paths = [layer["path"] for layer in data["layers"]]
    assert paths[0] == "tiny_base" and paths[-2] == "flatten"
    assert [p for p in paths if p.startswith("tiny_base/conv") or p.endswith("pool1")] == [
        "tiny_base/conv1", "tiny_base/pool1", "tiny_base/conv2"]
    assert data["gradcam_layer"] == "tiny_base/conv2"
    conv2 = next(layer for layer in data["layers"] if layer["path"] == "tiny_base/conv2")
    assert conv2["output_shape"] == [None, 13, 13, 12] and conv2["is_conv"]
    assert main(["layers", str(path)]) == 0
    text = capsys.readouterr().out
    assert "conv2" in text and "(None, 13, 13, 12)" in text and "Grad-CAM layer" in text


def test_gradcam_writes_overlay_and_heatmap_at_the_images_size(model_file, image_file, tmp_path, capsys):
    from engine.inspect.cam import compute_cam, resize_heatmap

    path, model = model_file
    image_path, pixels = image_file
    out, heat = tmp_path / "cam.png", tmp_path / "cam.npy"
    code = main(["gradcam", str(path), str(image_path), "--class", "0", "--out", str(out),
                 "--save-heatmap", str(heat), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["class_index"] == 0 and data["layer"] == "tiny_base/conv2" and data["method"] == "gradcam"
    saved = np.load(heat)
    assert saved.shape == (48, 40) and saved.dtype == np.float32
    assert 0.0 <= saved.min() and saved.max() <= 1.0
    picture = np.asarray(Image.open(out))
    assert picture.shape == (48, 40, 3)
    # the same numbers as the engine on the image resized as in training
    from engine.data.images import resize_rgb

    expected = compute_cam(model, resize_rgb(pixels, SIZE), class_index=0)
    np.testing.assert_allclose(saved, resize_heatmap(expected.heatmap, (48, 40)), atol=1e-4)
    assert data["score"] == pytest.approx(expected.score, abs=1e-5)


@pytest.mark.parametrize("method", ["gradcam++", "scorecam", "saliency"])
def test_gradcam_methods(model_file, image_file, tmp_path, method):
    path, _ = model_file
    image_path, _ = image_file
    out = tmp_path / f"{method}.png"
    assert main(["gradcam", str(path), str(image_path), "--method", method, "--out", str(out)]) == 0
    assert out.exists()


def test_gradcam_user_errors_exit_2_with_one_line(model_file, image_file, tmp_path, capsys):
    path, _ = model_file
    image_path, _ = image_file
    out = str(tmp_path / "x.png")
    cases = [
        (["--class", "5"], "class index 5 is out of range"),
        (["--class", "cat"], "no class names"),
        (["--layer", "flatten"], "not a spatial feature map"),
        (["--layer", "tiny_base/conv9"], "no layer 'conv9'"),
    ]
    for extra, message in cases:
        assert main(["gradcam", str(path), str(image_path), "--out", out, *extra]) == 2
        err = capsys.readouterr().err  # progress lines (not a terminal: whole lines), then the error
        errors = [line for line in err.splitlines() if line.startswith("convscope:")]
        assert len(errors) == 1 and message in errors[0] and err.splitlines()[-1] == errors[0]
        assert "Traceback" not in err and all(line.startswith(("convscope:", "gradcam:")) for line in err.splitlines())
    assert main(["gradcam", str(path), str(tmp_path / "missing.jpg"), "--out", out]) == 2
    assert "image file not found" in capsys.readouterr().err
    assert main(["gradcam", str(path), str(image_path), "--out", str(tmp_path / "x.jpg")]) == 2
    assert "must end in .png" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_activations_and_filters_commands(model_file, image_file, tmp_path, capsys):
    path, _ = model_file
    image_path, _ = image_file
    grid = tmp_path / "grid.png"
    assert main(["activations", str(path), str(image_path), "--layer", "conv1", "--out", str(grid),
                 "--images-per-row", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layer"] == "tiny_base/conv1" and data["channels"] == 8
    assert np.asarray(Image.open(grid)).shape == (3 * 30, 3 * 30)  # 8 channels, 3 per row → 3 rows
    gallery = tmp_path / "filters.png"
    assert main(["filters", str(path), "--layer", "tiny_base/conv2", "--count", "4", "--steps", "3",
                 "--out", str(gallery), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["filters"] == [0, 1, 2, 3] and data["image_size"] == SIZE
    assert np.asarray(Image.open(gallery)).shape == (SIZE, 4 * SIZE + 3 * 5, 3)
    assert main(["filters", str(path), "--layer", "flatten", "--out", str(gallery)]) == 2
    assert "not filters over an image" in capsys.readouterr().err


def test_activations_of_several_layers_or_all_come_from_one_pass(model_file, image_file, tmp_path, capsys,
                                                                    monkeypatch):
    from engine.inspect import activations

    path, _ = model_file
    image_path, _ = image_file
    single = tmp_path / "conv2.png"
    assert main(["activations", str(path), str(image_path), "--layer", "tiny_base/conv2", "--out", str(single)]) == 0
    capsys.readouterr()
    calls = []
    compute = activations.compute_activations
    monkeypatch.setattr(activations, "compute_activations", lambda *a: calls.append(a[2]) or compute(*a))
    folder = tmp_path / "grids"
    assert main(["activations", str(path), str(image_path), "--layer", "conv1", "--layer", "tiny_base/conv2",
                 "--out", str(folder), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["layers"]
    assert [r["layer"] for r in rows] == ["tiny_base/conv1", "tiny_base/conv2"] and [r["channels"] for r in rows] == [8, 12]
    assert calls == [["tiny_base/conv1", "tiny_base/conv2"]]  # one forward pass for both
    assert sorted(p.name for p in folder.iterdir()) == ["tiny_base__conv1.png", "tiny_base__conv2.png"]
    # the grid of a layer is the same whether it was asked alone or with others
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "tiny_base__conv2.png")), np.asarray(Image.open(single)))
    calls.clear()
    everything = tmp_path / "all"
    assert main(["activations", str(path), str(image_path), "--all", "--out", str(everything)]) == 0
    names = sorted(p.name for p in everything.iterdir())  # every feature map: rescaling, conv1, pool1, conv2
    assert len(calls) == 1 and len(names) == 4 and names[3].startswith("tiny_base__rescaling")
    assert names[:3] == ["tiny_base__conv1.png", "tiny_base__conv2.png", "tiny_base__pool1.png"]
    assert "Wrote 4 grids" in capsys.readouterr().out
    assert main(["activations", str(path), str(image_path), "--all", "--out", str(tmp_path / "x.png")]) == 2
    assert "give a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # neither --layer nor --all: argparse's usage error
        main(["activations", str(path), str(image_path), "--out", str(folder)])
    assert "one of the arguments --layer --all is required" in capsys.readouterr().err


def _json_lines(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_filters_json_events_one_line_per_event(model_file, tmp_path, capsys):
    path, _ = model_file
    gallery = tmp_path / "filters.png"
    assert main(["filters", str(path), "--layer", "conv2", "--count", "3", "--batch-size", "2", "--steps", "4",
                 "--out", str(gallery), "--json-events"]) == 0
    captured = capsys.readouterr()
    events = _json_lines(captured.out)
    assert captured.err == ""  # no progress text with --json-events
    progress = [e for e in events if e["event"] == "Progress"]
    assert [e["done"] for e in progress] == list(range(1, 9)) and {e["total"] for e in progress} == {8}
    partial = [e for e in events if e["event"] == "PartialResult"]
    assert [e["key"] for e in partial] == ["tiny_base/conv2:0", "tiny_base/conv2:1", "tiny_base/conv2:2"]
    assert partial[0]["value"] == {"shape": [SIZE, SIZE, 3], "dtype": "uint8"}  # described, not dumped
    assert events[-1]["event"] == "Result" and events[-1]["filters"] == [0, 1, 2]
    assert events[-1]["out"] == str(gallery) and gallery.exists()


def test_filters_human_progress_on_stderr_and_none_stderr(model_file, tmp_path, capsys, monkeypatch):
    path, _ = model_file
    gallery = tmp_path / "filters.png"
    assert main(["filters", str(path), "--layer", "conv2", "--count", "2", "--steps", "20",
                 "--out", str(gallery)]) == 0
    captured = capsys.readouterr()
    assert "Wrote" in captured.out and "{" not in captured.out
    lines = [line for line in captured.err.splitlines() if line.startswith("filters: ")]
    assert "filters: 20/20 (100%" in lines[-1]
    assert 2 <= len(lines) <= 13  # short: at most one line per tenth (not a tty), plus the loading line
    monkeypatch.setattr("sys.stderr", None)  # a windowed build
    assert main(["filters", str(path), "--layer", "conv2", "--count", "2", "--steps", "2",
                 "--out", str(gallery)]) == 0


def test_gradcam_json_events_and_progress(model_file, image_file, tmp_path, capsys, monkeypatch):
    path, _ = model_file
    image_path, _ = image_file
    out = tmp_path / "cam.png"
    assert main(["gradcam", str(path), str(image_path), "--class", "0", "--out", str(out), "--json-events"]) == 0
    events = _json_lines(capsys.readouterr().out)
    assert [e["done"] for e in events if e["event"] == "Progress"] == [0, 1, 2, 3]
    assert events[-1]["event"] == "Result" and events[-1]["class_index"] == 0
    assert events[-1]["layer"] == "tiny_base/conv2" and events[-1]["out"] == str(out)
    assert main(["gradcam", str(path), str(image_path), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "gradcam: 3/3 (100%" in captured.err and "Wrote" in captured.out
    monkeypatch.setattr("sys.stderr", None)
    assert main(["gradcam", str(path), str(image_path), "--out", str(out)]) == 0
    monkeypatch.undo()
    with pytest.raises(SystemExit):  # --json and --json-events exclude each other
        main(["gradcam", str(path), str(image_path), "--out", str(out), "--json", "--json-events"])
