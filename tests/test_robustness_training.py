"""Nothing lost, nothing let in — training settings and faults.

Absurd settings are refused before anything heavy starts (one line, exit 2 in the CLI); a run folder
that cannot be written is refused; a disk that fills up stops training with a message naming the
file and the fix while the previous last.keras still loads with its history; a process killed in
the middle of a checkpoint save leaves a consistent run folder that resumes.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from imagegen import make_shapes_dataset
from quick_runs import quick_config

from engine.cli import main
from engine.errors import DiskFullError
from engine.events import CancelToken, CheckpointSaved, EpochEnded, RunFailed
from engine.train import rundir
from engine.train.strategies import train

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_dataset(tmp_path_factory.mktemp("rob") / "shapes", per_class=12, size=40)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def _load(path):
    from engine.models.loading import load_keras_file

    return load_keras_file(path, compile=True)  # the optimizer state too, as resume loads it


# ----------------------------------------------------------------------------------- settings
@pytest.mark.parametrize("extra, expected", [
    (["--image-size", "0"], "image size 0 is out of range — use 46 to 1024 pixels"),
    (["--image-size", "100000"], "image size 100000 is out of range — use 46 to 1024 pixels"),
    (["--epochs", "0"], "epochs 0 is invalid — train for at least 1 epoch"),
    (["--learning-rate", "0"], "learning rate 0.0 is invalid — use a positive number"),
    (["--learning-rate", "-0.001"], "learning rate -0.001 is invalid — use a positive number"),
    (["--batch-size", "-3"], "batch size -3 is invalid"),
])
def test_absurd_settings_exit_2_with_one_line_before_anything_is_written(extra, expected, shapes, tmp_path,
                                                                           capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(shapes), "--out", str(out), *extra]) == 2
    assert expected in _error_line(capsys)
    assert not out.exists()  # refused before the run folder was made


def test_batch_larger_than_the_dataset_trains_with_the_whole_set_per_batch(shapes, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(shapes), "--out", str(out), "--image-size", "48", "--batch-size",
                 "100000", "--epochs", "1", "--no-tensorboard"]) == 0
    text = capsys.readouterr().out
    assert "warning: batch size 100000 is larger than the 12 training images; using 12" in text
    assert [r["epoch"] for r in rundir.read_history_rows(out)] == [1]


def test_run_folder_inside_a_regular_file_is_refused(shapes, tmp_path, capsys):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    assert main(["train", "--data", str(shapes), "--out", str(blocker / "run")]) == 2
    assert f"run folder '{blocker / 'run'}' is inside a file ('{blocker}')" in _error_line(capsys)
    assert main(["train", "--data", str(shapes), "--runs-root", str(blocker / "runs")]) == 2
    assert "runs folder" in _error_line(capsys) and blocker.read_text() == "a file where a folder should be"


def _unprivileged():
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to start an unprivileged process with setpriv")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_run_folder_not_writable_for_the_user_is_refused(shapes):
    """Root writes anywhere, so the user is `nobody` (uid 65534) in a subprocess; the folder is root's."""
    drop = _unprivileged()
    shared = Path(tempfile.mkdtemp(prefix="convscope_rob_"))
    try:
        shared.chmod(0o755)
        data = make_shapes_dataset(shared / "data", per_class=6, size=40)
        locked = shared / "locked"
        locked.mkdir(mode=0o755)  # root's folder: nobody may read it but not write it
        home = shared / "home"
        home.mkdir(mode=0o777)
        home.chmod(0o777)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(home), "CONVSCOPE_HOME": str(home)}
        for args in (["--out", str(locked / "run")], ["--runs-root", str(locked)]):
            proc = subprocess.run([*drop, sys.executable, "-m", "engine.cli", "train", "--data", str(data), *args],
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 2, proc.stderr[-2000:]
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and "cannot be written — choose a folder you can write to" in lines[0], lines
        assert list(locked.iterdir()) == []
    finally:
        shutil.rmtree(shared, ignore_errors=True)


# ----------------------------------------------------------------------------------- disk full
def _history_epochs(run: Path) -> list[int]:
    return [r["epoch"] for r in rundir.read_history_rows(run)]


def _assert_failed_cleanly(run: Path, error: DiskFullError, events: list, done: int) -> None:
    assert "disk full: could not write" in str(error) and "free disk space" in str(error)
    assert any(isinstance(e, RunFailed) and "disk full" in e.error for e in events)
    assert _history_epochs(run) == list(range(1, done + 1))  # complete up to the last finished epoch
    state = rundir.read_state(run)
    assert state["status"] == "failed" and "disk full" in state["error"] and state["epochs_done"] == done
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temp file left behind
    model = _load(run / "last.keras")  # the previous checkpoint still loads
    assert model.predict(np.zeros((1, 48, 48, 3), "float32"), verbose=0).shape == (1, 1)


def test_disk_full_during_a_checkpoint_save_keeps_the_previous_one(shapes, tmp_path, monkeypatch):
    """ENOSPC injected into Keras's own save, half-way through writing the temp file of epoch 2."""
    from engine.tf_runtime import keras

    model_class = keras().Model
    real_save = model_class.save
    calls = {"n": 0}

    def save(self, filepath, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:  # epoch 1 wrote last.keras (best.keras is its copy); epoch 2 fills the disk
            Path(filepath).write_bytes(b"PK\x03\x04 half a zip")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(self, filepath, *args, **kwargs)

    monkeypatch.setattr(model_class, "save", save)
    events: list = []
    run = tmp_path / "run"
    with pytest.raises(DiskFullError) as info:
        train(quick_config(shapes, run), events.append)
    assert f"'{run / 'last.keras'}'" in str(info.value)
    assert [e.epoch for e in events if isinstance(e, EpochEnded)] == [1]
    _assert_failed_cleanly(run, info.value, events, done=1)
    monkeypatch.setattr(model_class, "save", real_save)
    assert rundir.read_state(run)["best_epoch"] == 1


def test_disk_full_while_the_run_folder_is_created_is_a_clear_message(shapes, tmp_path, monkeypatch, capsys):
    real_mkdir = Path.mkdir

    def full(self, *args, **kwargs):
        if self.name.startswith("20"):  # the new run folder (<date>_<time>_…), not its parents
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", full)
    runs = tmp_path / "runs"
    _assert_cli_reports_disk_full(shapes, ["--runs-root", str(runs)], capsys, f"could not create the folder '{runs}")
    assert not runs.exists() or not any(runs.iterdir())  # no half-made run


def _assert_cli_reports_disk_full(shapes, where: list[str], capsys, what: str) -> None:
    """`convscope train` into ``where`` exits 2 with one line: "disk full: <what>…", and the fix."""
    assert main(["train", "--data", str(shapes), *where, "--image-size", "48", "--epochs", "1",
                 "--no-tensorboard"]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"convscope: disk full: {what}")
    assert line.endswith("free disk space (or choose a folder on another disk) and try again")


def test_disk_full_in_the_cli_is_one_line_exit_2(shapes, tmp_path, monkeypatch, capsys):
    from engine.tf_runtime import keras

    def full(self, filepath, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(keras().Model, "save", full)
    out = tmp_path / "run"
    _assert_cli_reports_disk_full(shapes, ["--out", str(out)], capsys, f"could not write '{out / 'last.keras'}'")


@pytest.fixture()
def small_disk(tmp_path):
    """A real 24 MB tmpfs (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_disk_stops_training_and_keeps_the_previous_checkpoint(shapes, small_disk):
    """The run folder is on a small tmpfs; after epoch 1 it is filled up to the last 256 kB, so epoch 2's
    checkpoint (a few MB) no longer fits while the small JSON files still do."""
    run = small_disk / "run"
    events: list = []

    def sink(event):
        events.append(event)
        if isinstance(event, CheckpointSaved) and event.epoch == 1 and not (small_disk / "filler").exists():
            stat = os.statvfs(small_disk)
            with open(small_disk / "filler", "wb") as handle:
                handle.write(b"\0" * (stat.f_bavail * stat.f_frsize - 256 * 1024))

    with pytest.raises(DiskFullError) as info:
        train(quick_config(shapes, run), sink)
    assert f"'{run / 'last.keras'}'" in str(info.value)
    _assert_failed_cleanly(run, info.value, events, done=1)


# ----------------------------------------------------------------------------------- cancel / kill
def test_cancel_while_a_checkpoint_is_being_saved_leaves_a_consistent_run(shapes, tmp_path, monkeypatch):
    """The cancel request arrives while last.keras of epoch 2 is being written: the save completes,
    epoch 2 is recorded, and nothing after it."""
    from engine.tf_runtime import keras

    model_class = keras().Model
    real_save = model_class.save
    token = CancelToken()
    calls = {"n": 0}

    def save(self, filepath, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # epoch 1: last (best is its copy); epoch 2: last
            token.cancel()
        return real_save(self, filepath, *args, **kwargs)

    monkeypatch.setattr(model_class, "save", save)
    result = train(quick_config(shapes, tmp_path / "run", epochs=6), cancel=token)
    assert result.status == "cancelled"
    run = Path(result.run_dir)
    assert _history_epochs(run) == [1, 2]
    state = rundir.read_state(run)
    assert state["status"] == "cancelled" and state["epochs_done"] == 2
    model = _load(run / "last.keras")
    assert int(model.optimizer.iterations.numpy()) == 2 * 2  # 12 images / 8 per batch = 2 steps per epoch
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]


KILL_MID_SAVE = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from engine.tf_runtime import keras
    from engine.cli import main

    real_save = keras().Model.save
    calls = {"n": 0}

    def save(self, filepath, *args, **kwargs):
        calls["n"] += 1
        real_save(self, filepath, *args, **kwargs)
        if calls["n"] == 2:  # epoch 2's last.keras (epoch 1 saved once, best.keras copied): half written, then the power goes
            data = Path(filepath).read_bytes()
            Path(filepath).write_bytes(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)

    keras().Model.save = save
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_killed_in_the_middle_of_a_checkpoint_save_resumes_from_the_previous_one(shapes, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["train", "--data", str(shapes), "--image-size", "48", "--batch-size", "8", "--epochs", "4",
            "--patience", "0", "--learning-rate", "1e-3", "--out", str(run), "--no-tensorboard", "--json-events"]
    killed = subprocess.run([sys.executable, "-c", KILL_MID_SAVE, *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=240)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert _history_epochs(run) == [1]
    assert rundir.read_state(run)["status"] == "running"
    model = _load(run / "last.keras")  # epoch 1's checkpoint, untouched by the half-written one
    assert int(model.optimizer.iterations.numpy()) == 2
    resumed = subprocess.run([sys.executable, "-m", "engine.cli", "train", "--resume", str(run), "--json-events"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    epochs = [json.loads(line)["epoch"] for line in resumed.stdout.splitlines()
              if line.startswith("{") and json.loads(line)["event"] == "EpochEnded"]
    assert epochs == [2, 3, 4]
    assert _history_epochs(run) == [1, 2, 3, 4] and rundir.read_state(run)["status"] == "finished"
    assert int(_load(run / "last.keras").optimizer.iterations.numpy()) == 4 * 2


def test_best_checkpoint_holds_the_best_epochs_weights_and_last_the_final_ones(shapes, tmp_path, monkeypatch):
    """best.keras is written as a copy of the epoch's last.keras when that epoch improves (one
    serialization, not two): whichever epoch was best, best.keras must hold that epoch's weights and
    last.keras the final epoch's."""
    from engine.models.loading import load_keras_file
    from engine.train import fitting

    weights_at_epoch: list[list[np.ndarray]] = []
    real_save = fitting.save_model

    def recording_save(model, path):
        if Path(path).name == "last.keras":
            weights_at_epoch.append([w.copy() for w in model.get_weights()])
        return real_save(model, path)

    monkeypatch.setattr(fitting, "save_model", recording_save)
    run = tmp_path / "run"
    train(quick_config(shapes, run, epochs=4, learning_rate=3e-2))  # a high rate: the loss does not fall every epoch
    state = rundir.read_state(run)
    assert len(weights_at_epoch) == 4
    for name, epoch in (("best.keras", state["best_epoch"]), ("last.keras", 4)):
        saved = load_keras_file(run / name).get_weights()
        assert all(np.array_equal(a, b) for a, b in zip(saved, weights_at_epoch[epoch - 1])), (name, epoch)
