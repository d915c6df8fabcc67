"""Nothing let in — model files from someone else, through the command line.

Every bad model file gives one error line (the last on stderr) naming the file and what to do, exit status 2 and no
traceback, for every command that takes a model; a model without any convolution layer says why
activations, filters and Grad-CAM cannot run on it.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.tf_runtime import keras

SIZE = 32


def _conv_model():
    k = keras()
    k.utils.set_random_seed(0)
    return k.Sequential([k.Input((SIZE, SIZE, 3)), k.layers.Rescaling(1 / 255.0),
                         k.layers.Conv2D(4, 3, activation="relu", name="conv"), k.layers.Flatten(name="flatten"),
                         k.layers.Dense(2, activation="softmax", name="out")], name="small")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    good = folder / "good.keras"
    _conv_model().save(good)
    (folder / "notes.keras").write_text("these are my notes, not a model")
    (folder / "cut.keras").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(folder / "future.keras", "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "metadata.json":
                data = json.dumps({**json.loads(data), "keras_version": "99.1.0"}).encode()
            dst.writestr(item, data)
    _conv_model().save_weights(folder / "only.weights.h5")
    k = keras()
    dense = k.Sequential([k.Input((SIZE, SIZE, 3)), k.layers.Flatten(name="flatten"),
                          k.layers.Dense(8, activation="relu", name="hidden"),
                          k.layers.Dense(2, activation="softmax", name="out")], name="dense_only")
    dense.save(folder / "dense.keras")
    image = folder / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(image)
    return folder


def _error(capsys) -> str:
    """The one error line: the last line on stderr (filters and gradcam print progress lines before it),
    the only one starting with ``convscope:``, and no traceback."""
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert "Traceback" not in err and [l for l in lines if l.startswith("convscope:")] == lines[-1:], err
    return lines[-1]


def _commands(model: str, image: str, out: str) -> dict[str, list[str]]:
    return {
        "summary": ["summary", model],
        "layers": ["layers", model],
        "predict": ["predict", model, image],
        "activations": ["activations", model, image, "--layer", "conv", "--out", out],
        "filters": ["filters", model, "--layer", "conv", "--count", "2", "--steps", "2", "--out", out],
        "gradcam": ["gradcam", model, image, "--out", out],
    }


BAD_FILES = {
    "notes.keras": "notes.keras: not a Keras model file (a .keras file is a zip archive)",
    "cut.keras": "cut.keras: damaged or truncated .keras file",
    "future.keras": "future.keras: saved by Keras 99.1.0",
    "only.weights.h5": "only.weights.h5: a weights-only file",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
@pytest.mark.parametrize("command", ["summary", "layers", "predict", "activations", "filters", "gradcam"])
def test_bad_model_file_is_one_line_exit_2_in_every_command(files, name, command, capsys):
    out = files / f"out_{command}_{name}.png"
    argv = _commands(str(files / name), str(files / "photo.png"), str(out))[command]
    assert main(argv) == 2
    err = _error(capsys)
    assert BAD_FILES[name] in err and " — " in err  # the file, what is wrong, then what to do
    assert not out.exists()


@pytest.mark.parametrize("command, expected", [
    ("activations", "a channel grid needs a feature map"),
    ("filters", "'flatten'"),
    ("gradcam", "no convolution layer"),
])
def test_model_without_conv_layers_says_why_inspection_cannot_run(files, command, expected, capsys):
    out = files / f"dense_{command}.png"
    argv = _commands(str(files / "dense.keras"), str(files / "photo.png"), str(out))[command]
    argv = [a if a != "conv" else "flatten" for a in argv]
    assert main(argv) == 2
    err = _error(capsys)
    assert expected in err, err
    assert not out.exists()
    # the model itself is fine: its layers list and it predicts
    assert main(["layers", str(files / "dense.keras")]) == 0
    assert main(["predict", str(files / "dense.keras"), str(files / "photo.png")]) == 0
