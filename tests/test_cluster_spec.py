"""How a cluster is given (`--cluster ... --task N`, `--tf-config FILE`), the commands the workers run,
and what the workers compare before training — without starting TensorFlow's cluster."""

from __future__ import annotations

import json
import os
import shutil
from types import SimpleNamespace

from pathlib import Path

import pytest

from engine.errors import InvalidSetting
from engine.train.cluster import ClusterTrainConfig, settings_digest, split_digest, worker_folder
from engine.train.cluster_spec import ClusterSpec, port_open, train_arguments, worker_command
from engine.train.config import TrainConfig
from imagegen import make_shapes_dataset


def test_cluster_and_task_from_the_command_line():
    spec = ClusterSpec.parse("10.0.0.1:2222, 10.0.0.2:2222,", 1)
    assert spec.workers == ("10.0.0.1:2222", "10.0.0.2:2222") and spec.task == 1 and not spec.is_chief
    assert spec.name_of(0) == "the chief (10.0.0.1:2222)" and spec.name_of(1) == "worker 1 (10.0.0.2:2222)"
    assert spec.tf_config() == {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]},
                                "task": {"type": "worker", "index": 1}}


@pytest.mark.parametrize("cluster, task, fragment", [
    ("10.0.0.1:2222,10.0.0.2", 0, "'10.0.0.2' is not HOST:PORT"),
    ("10.0.0.1:2222,10.0.0.2:99999", 0, "is not HOST:PORT"),
    ("10.0.0.1:2222", 0, "a cluster of 1 worker"),
    ("10.0.0.1:2222,10.0.0.1:2222", 0, "lists an address twice"),
    ("10.0.0.1:2222,10.0.0.2:2222", 2, "task 2 is not in a cluster of 2 workers"),
    ("10.0.0.1:2222,10.0.0.2:2222", None, "--cluster needs --task N"),
])
def test_bad_clusters_are_refused_naming_the_setting(cluster, task, fragment):
    with pytest.raises(InvalidSetting, match=fragment.replace("(", r"\(")):
        ClusterSpec.parse(cluster, task)


def test_tf_config_file_with_a_chief_job_reads_chief_first(tmp_path):
    path = tmp_path / "tf_config.json"
    path.write_text(json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]},
                                "task": {"type": "worker", "index": 1}}))
    spec = ClusterSpec.from_tf_config(path)
    assert spec.workers == ("a:1", "b:2", "c:3") and spec.task == 2
    path.write_text(json.dumps({"cluster": {"worker": ["a:1", "b:2"], "ps": ["p:9"]},
                                "task": {"type": "worker", "index": 0}}))
    with pytest.raises(InvalidSetting, match="no parameter servers"):
        ClusterSpec.from_tf_config(path)
    path.write_text("{not json")
    with pytest.raises(InvalidSetting, match="is not a TF_CONFIG"):
        ClusterSpec.from_tf_config(path)


def test_worker_commands_differ_only_in_the_task():
    spec = ClusterSpec.parse("h1:5000,h2:5000,h3:5000", 0)
    args = ["--data", "/data/cats vs dogs", "--out", "/runs/r1", "--epochs", "5"]
    command = worker_command(spec, 2, args)
    assert command == ("convscope train --data '/data/cats vs dogs' --out /runs/r1 --epochs 5 "
                       "--cluster h1:5000,h2:5000,h3:5000 --task 2")
    assert worker_command(spec, 1, args) == command.replace("--task 2", "--task 1")


def test_a_port_is_open_only_while_something_listens():
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    assert port_open(address)
    server.close()
    assert not port_open(address)


def test_settings_digest_ignores_each_machines_own_paths_only(tmp_path):
    base = TrainConfig(data=str(tmp_path), out="/a/run", epochs=3)
    assert settings_digest(base) == settings_digest(TrainConfig(data="/elsewhere", out="/b/run", epochs=3,
                                                                tensorboard=False))
    assert settings_digest(base) != settings_digest(TrainConfig(data=str(tmp_path), out="/a/run", epochs=4))


def test_split_digest_matches_a_copy_with_other_times_and_catches_changed_files(tmp_path):
    from engine.data.scan import ScanConfig, scan
    from engine.data.split import make_split

    def digest(root):
        return split_digest(make_split(scan(ScanConfig(root=str(root))), 0.25, 0.25, seed=0))

    data = make_shapes_dataset(tmp_path / "data", per_class=6, size=48)
    copy = tmp_path / "copy"
    shutil.copytree(data, copy, copy_function=shutil.copy)
    first = sorted((copy / "circle").iterdir())[0]
    os.utime(first, (1, 1))
    assert digest(copy) == digest(data)
    with open(first, "ab") as handle:  # same names, one file one byte longer
        handle.write(b"\0")
    assert digest(copy) != digest(data)


def test_only_the_chief_uses_the_run_folder(tmp_path):
    train = TrainConfig(data=str(tmp_path), out=str(tmp_path / "run"))
    chief = worker_folder(ClusterTrainConfig(train, ClusterSpec.parse("h1:1,h2:2", 0)))
    other = worker_folder(ClusterTrainConfig(train, ClusterSpec.parse("h1:1,h2:2", 1)))
    restarted = worker_folder(ClusterTrainConfig(train, ClusterSpec.parse("h1:7,h2:8", 1)))  # other ports
    assert chief == tmp_path / "run"
    assert other.name == "worker-1" and tmp_path / "run" not in other.parents and restarted == other


def test_without_out_every_worker_names_the_same_run_folder_on_every_restart(tmp_path):
    """`convscope train --data D --cluster ... --task N` as the issue writes it, with no --out: the
    run folder follows from the shared settings, not from the time or the machine."""
    chief, other = ClusterSpec.parse("h1:1,h2:2", 0), ClusterSpec.parse("h1:7,h2:8", 1)
    runs = tmp_path / "runs"
    first = ClusterTrainConfig(TrainConfig(data=str(tmp_path / "a"), runs_root=str(runs)), chief).with_run_folder()
    again = ClusterTrainConfig(TrainConfig(data=str(tmp_path / "b"), runs_root=str(runs)), other).with_run_folder()
    assert Path(first.train.out).parent == runs and Path(first.train.out).name.startswith("cluster-scratch-")
    assert first.train.out == again.train.out  # another data path and other ports: the same run
    changed = ClusterTrainConfig(TrainConfig(data=str(tmp_path), runs_root=str(runs), epochs=3), chief)
    assert changed.with_run_folder().train.out != first.train.out  # other settings: another run
    given = ClusterTrainConfig(TrainConfig(data=str(tmp_path), out=str(tmp_path / "mine")), chief)
    assert given.with_run_folder().train.out == str(tmp_path / "mine")


def test_cluster_run_needs_no_mirrored(tmp_path):
    spec = ClusterSpec.parse("h1:1,h2:2", 0)
    with pytest.raises(InvalidSetting, match="--distribute mirrored cannot be combined"):
        ClusterTrainConfig(TrainConfig(data=str(tmp_path), out=str(tmp_path / "r"), distribute="mirrored"),
                           spec).validate()


def test_cli_refuses_resume_with_cluster(tmp_path, capsys):
    from engine.cli import main

    assert main(["train", "--resume", str(tmp_path), "--cluster", "h1:1,h2:2", "--task", "0"]) == 2
    assert "--resume and --cluster cannot be combined" in capsys.readouterr().err


@pytest.mark.parametrize("settings", [
    {},
    {"strategy": "finetune", "base": "vgg16-book", "head_epochs": 2, "finetune_from": "block5_conv1",
     "learning_rate": 1e-5, "augment": True, "augmentation": "book", "tensorboard": False},
    {"strategy": "features", "augment": False, "head_pooling": "avg", "recipe": "book", "max_per_class": 10,
     "image_size": 96, "batch_size": 16, "seed": 3, "patience": 0},
    {"strategy": "finetune", "optimizer": "adam-cosine", "learning_rate": 1e-4, "head_pooling": "avg"},
])
def test_train_arguments_give_the_same_config_through_the_cli(tmp_path, monkeypatch, settings):
    """What the GUI shows each worker must train exactly what the chief trains."""
    from engine.cli import build_parser
    from engine.commands import training

    config = TrainConfig(data=str(tmp_path / "my data"), out=str(tmp_path / "run"), **settings)
    seen = []

    def train_cluster(cluster_config, emit, cancel):
        seen.append(cluster_config)
        return SimpleNamespace(status="finished")

    monkeypatch.setattr("engine.train.cluster.train_cluster", train_cluster)
    args = build_parser().parse_args(["train", *train_arguments(config), "--cluster", "h1:1,h2:2", "--task", "1"])
    assert training._cmd_train(args) == 0
    assert seen[0].train == config and seen[0].cluster.task == 1


@pytest.mark.parametrize("count, batch, replicas, expected", [
    (16, 16, 1, (16, 0)), (17, 16, 1, (16, 0)),  # one replica: batches as always, the last partial
    (16, 16, 2, (16, 0)), (17, 16, 2, (16, 1)), (20, 8, 3, (8, 4)),
    (8, 16, 2, (8, 0)), (7, 16, 2, (6, 1)),  # a subset smaller than a batch: its largest whole batch
])
def test_replica_batches_are_whole_and_say_what_is_left_out(count, batch, replicas, expected):
    from engine.train.fitting import replica_batches

    assert replica_batches(count, batch, replicas) == expected


def test_fewer_images_or_a_smaller_batch_than_replicas_is_refused():
    from engine.train.fitting import replica_batches

    with pytest.raises(InvalidSetting, match="3 validation image.s. in batches of 8 cannot be shared by 4 replicas"):
        replica_batches(3, 8, 4, "validation")
    with pytest.raises(InvalidSetting, match="cannot be shared by 2 replicas"):
        replica_batches(100, 1, 2)
