"""Training on a cluster of two worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy), end to end
through `convscope train --cluster ... --task N`: the chief's run folder, weights equal to a
one-process run, a killed worker named within 10 s, a restart that resumes, different datasets refused."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time

import numpy as np
import pytest

from cluster_workers import convscope_error, finish, loopback_cluster, start, train_args
from imagegen import make_shapes_dataset

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _weights(path):
    from engine.tf_runtime import keras

    return [w.numpy() for w in keras().models.load_model(path, compile=False).weights]


def _copy_with_new_times(source, target):
    """A dataset copied as a user would with a plain copy: same files, other modification times."""
    shutil.copytree(source, target, copy_function=shutil.copy)
    return target


def test_two_workers_train_like_one_process_and_only_the_chief_writes_the_run(tmp_path):
    data = make_shapes_dataset(tmp_path / "data", per_class=16, size=48)
    copy = _copy_with_new_times(data, tmp_path / "copy")
    cluster, out, home = loopback_cluster(), tmp_path / "run", tmp_path / "home"
    # One batch of all 16 training images per step: the gradient is then the same set's mean in any
    # order (the distributed pipeline shuffles in another order than one process: docs/DISTRIBUTED.md).
    args = dict(batch_size=16, epochs=4)
    chief = start(train_args(data, out, **args), tiny=True, cluster=cluster, task=0, home=home)
    worker = start(train_args(copy, out, **args), tiny=True, cluster=cluster, task=1, home=home)
    single = start(train_args(data, tmp_path / "single", **args), tiny=True, home=home)
    results = [finish(p) for p in (chief, worker, single)]
    for code, stdout, stderr in results:
        assert code == 0, stderr[-3000:]
    assert "keras trainer patched: True" in results[0][1]
    assert "keras trainer patched: False" in results[2][1]  # the patch is applied in cluster runs only

    state = json.loads((out / "state.json").read_text())
    assert state["status"] == "finished" and state["epochs_done"] == 4
    for name in ("config.json", "manifest.json", "history.csv", "events.jsonl", "best.keras", "last.keras",
                 "split"):
        assert (out / name).exists(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(manifest["split_counts"]["train"].values()) == 16
    assert manifest["cluster"]["workers"] == cluster and manifest["cluster"]["task"] == 0
    # the other worker kept its own copy of the run elsewhere, under its data folder
    backups = list((home / "cluster").glob("*/worker-1"))
    assert len(backups) == 1 and (backups[0] / "last.keras").is_file()
    assert not list(out.glob("**/worker-*"))

    chief_w, worker_w, single_w = (_weights(p) for p in (out / "last.keras", backups[0] / "last.keras",
                                                         tmp_path / "single" / "last.keras"))
    assert all(np.array_equal(a, b) for a, b in zip(chief_w, worker_w))
    # Two replicas each average half of the global batch and the halves are summed: the same
    # gradient in another float32 summation order (~1e-6 apart, measured).
    for a, b in zip(chief_w, single_w):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)
    assert any(not np.array_equal(a, b) for a, b in zip(chief_w, _initial_weights(tmp_path, data, home)))


def _initial_weights(tmp_path, data, home):
    """Weights of a one-epoch run at learning rate ~0: guards against a test that compares two
    untrained models."""
    code, _, err = finish(start(train_args(data, tmp_path / "zero", epochs=1, learning_rate=1e-12), tiny=True,
                                home=home))
    assert code == 0, err[-2000:]
    return _weights(tmp_path / "zero" / "last.keras")


def _wait_for_second_epoch(proc, seen: list[dict]) -> None:
    """Read the chief's JSON events until a batch of epoch 2 has run."""
    for line in proc.stdout:
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        seen.append(event)
        if event["event"] == "BatchProgress" and event["epoch"] >= 2:
            return
    raise AssertionError("the chief ended before epoch 2")


def test_killed_worker_stops_the_chief_naming_it_and_a_restart_resumes(tmp_path):
    data = make_shapes_dataset(tmp_path / "data", per_class=40, size=48)
    cluster, out, home = loopback_cluster(), tmp_path / "run", tmp_path / "home"
    args = train_args(data, out, epochs=3, batch_size=4) + ["--json-events"]
    chief = start(args, cluster=cluster, task=0, home=home)
    worker = start(args, cluster=cluster, task=1, home=home)
    seen: list[dict] = []
    reader = threading.Thread(target=_wait_for_second_epoch, args=(chief, seen), daemon=True)
    reader.start()
    reader.join(timeout=300)
    assert not reader.is_alive(), "no second epoch within 300 s"
    worker.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    code, _, stderr = finish(chief, timeout=60)
    stopped_after = time.monotonic() - killed
    worker.wait()
    assert code != 0
    assert stopped_after < 10, f"the chief took {stopped_after:.1f} s to notice"
    message = convscope_error(stderr)
    assert f"worker 1 ({cluster[1]}) stopped responding" in message, stderr[-3000:]
    before = (out / "history.csv").read_text().splitlines()
    assert len(before) - 1 >= 1  # at least epoch 1 finished before the kill

    chief = start(args, cluster=cluster, task=0, home=home)
    worker = start(args, cluster=cluster, task=1, home=home)
    (code, stdout, stderr), (wcode, _, wstderr) = finish(chief), finish(worker)
    assert code == 0 and wcode == 0, stderr[-3000:] + wstderr[-3000:]
    after = (out / "history.csv").read_text().splitlines()
    assert len(after) - 1 == 3
    assert after[:len(before)] == before  # every finished epoch kept, none trained again
    statuses = [json.loads(line).get("message", "") for line in stdout.splitlines() if line.startswith("{")]
    assert f"resuming after epoch {len(before) - 1} from last.keras" in statuses
    print(f"chief stopped {stopped_after:.1f} s after SIGKILL of worker 1")


def test_hung_worker_stops_the_chief_naming_it_within_10_s(tmp_path):
    """A worker that hangs (SIGSTOP: alive, connections open, no answer) is named and the chief has
    left within 10 s: TensorFlow's own shutdown would wait on that peer, so the chief leaves at once."""
    data = make_shapes_dataset(tmp_path / "data", per_class=40, size=48)
    cluster, out, home = loopback_cluster(), tmp_path / "run", tmp_path / "home"
    args = train_args(data, out, epochs=3, batch_size=4) + ["--json-events"]
    chief = start(args, cluster=cluster, task=0, home=home)
    worker = start(args, cluster=cluster, task=1, home=home)
    try:
        reader = threading.Thread(target=_wait_for_second_epoch, args=(chief, []), daemon=True)
        reader.start()
        reader.join(timeout=300)
        assert not reader.is_alive(), "no second epoch within 300 s"
        worker.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        said_at: list[float] = []
        lines: list[str] = []

        def read_stderr():
            for line in chief.stderr:
                lines.append(line)
                if line.startswith("convscope: ") and not said_at:
                    said_at.append(time.monotonic())

        stderr_reader = threading.Thread(target=read_stderr, daemon=True)
        stderr_reader.start()
        chief.stdout.read()  # drained so the chief never blocks on a full pipe
        code = chief.wait(timeout=60)
        left_after = time.monotonic() - stopped
        stderr_reader.join(timeout=10)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    stderr = "".join(lines)
    assert code == 2, stderr[-3000:]
    assert f"worker 1 ({cluster[1]}) stopped responding" in convscope_error(stderr), stderr[-3000:]
    assert left_after < 10, f"the chief left {left_after:.1f} s after worker 1 hung"
    # Once it has said so it leaves: TensorFlow's shutdown would wait seconds on the hung peer.
    assert stopped + left_after - said_at[0] < 2, f"the chief lingered {stopped + left_after - said_at[0]:.1f} s"
    assert (out / "last.keras").is_file() and len((out / "history.csv").read_text().splitlines()) >= 2
    print(f"chief named worker 1 {said_at[0] - stopped:.1f} s and left {left_after:.1f} s after its SIGSTOP")


def test_workers_with_different_datasets_are_refused_before_training(tmp_path):
    data = make_shapes_dataset(tmp_path / "data", per_class=8, size=48)
    other = _copy_with_new_times(data, tmp_path / "other")
    extra = sorted((other / "circle").iterdir())[0]
    shutil.copy(extra, extra.with_name("extra.png"))
    cluster, out, home = loopback_cluster(), tmp_path / "run", tmp_path / "home"
    chief = start(train_args(data, out), cluster=cluster, task=0, home=home)
    worker = start(train_args(other, out), cluster=cluster, task=1, home=home)
    for code, _, stderr in (finish(chief), finish(worker)):
        assert code == 2, stderr[-3000:]
        message = convscope_error(stderr)
        assert f"worker 1 ({cluster[1]}) sees another dataset than the chief" in message, stderr[-3000:]
    assert not (out / "history.csv").exists() and not (out / "last.keras").exists()
