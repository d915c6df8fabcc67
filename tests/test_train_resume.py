"""A training process killed with SIGKILL resumes after its last finished epoch (for real)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from imagegen import make_shapes_dataset

from engine.train import rundir

ROOT = Path(__file__).resolve().parent.parent


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_killed_training_resumes_without_lost_or_repeated_epochs(tmp_path):
    data = make_shapes_dataset(tmp_path / "shapes", per_class=20, size=48)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "engine.cli", "train", "--data", str(data), "--strategy", "scratch",
           "--image-size", "48", "--batch-size", "4", "--epochs", "8", "--patience", "0",
           "--learning-rate", "1e-3", "--out", str(run), "--json-events", "--no-tensorboard"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    killed_after = None
    try:
        for line in proc.stdout:
            event = json.loads(line)
            if event["event"] == "EpochEnded" and event["epoch"] >= 2:
                proc.send_signal(signal.SIGKILL)
                killed_after = event["epoch"]
                break
    finally:
        proc.wait(timeout=60)
    assert killed_after is not None and proc.returncode == -signal.SIGKILL
    before = rundir.read_history_rows(run)
    assert len(before) >= killed_after  # history was written before the event
    assert rundir.read_state(run)["status"] == "running"  # it never got to say otherwise
    # a kill during a checkpoint save leaves atomic_path's temp file behind; a user's own file sits beside it
    leftover = run / ".last.keras.k1ll3d_x.keras"
    leftover.write_bytes(b"PK\x03\x04 half a zip")
    (run / "notes.txt").write_text("mine")

    resumed = subprocess.run([sys.executable, "-m", "engine.cli", "train", "--resume", str(run), "--json-events"],
                             cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    events = [json.loads(line) for line in resumed.stdout.splitlines() if line.startswith("{")]
    resumed_epochs = [e["epoch"] for e in events if e["event"] == "EpochEnded"]
    assert not leftover.exists() and (run / "notes.txt").read_text() == "mine"
    assert any(e["event"] == "Status" and leftover.name in e["message"] for e in events)
    assert resumed_epochs == list(range(len(before) + 1, 9))
    after = rundir.read_history_rows(run)
    assert [r["epoch"] for r in after] == list(range(1, 9))  # no epoch lost or repeated
    assert after[:len(before)] == before  # the finished epochs are kept as they were
    assert rundir.read_state(run)["status"] == "finished"
    # the resumed run kept learning from the restored weights and optimizer, not from scratch
    assert after[len(before)]["loss"] < after[0]["loss"] and after[-1]["loss"] < after[0]["loss"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_run_with_the_book_augmentation_resumes_in_a_fresh_process(tmp_path):
    # The book preset is ConvScope's own registered layer: a new process must know it before
    # Keras reads last.keras back (it did not, once).
    from engine.events import CancelToken, EpochEnded
    from engine.train.config import TrainConfig
    from engine.train.strategies import train

    data = make_shapes_dataset(tmp_path / "shapes", per_class=10, size=48)
    run = tmp_path / "run"
    cancel = CancelToken()

    def stop_after_first_epoch(event):
        if isinstance(event, EpochEnded):
            cancel.cancel()

    config = TrainConfig(data=str(data), strategy="scratch", image_size=48, batch_size=4, epochs=3,
                         augment=True, augmentation="book", patience=0, out=str(run), tensorboard=False)
    result = train(config, stop_after_first_epoch, cancel)
    assert result.status == "cancelled" and result.epochs_done == 1

    resumed = subprocess.run([sys.executable, "-m", "engine.cli", "train", "--resume", str(run), "--json-events"],
                             cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [r["epoch"] for r in rundir.read_history_rows(run)] == [1, 2, 3]
