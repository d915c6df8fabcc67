"""Who is in a training cluster: the worker addresses, this process's task, and the command each worker runs.

No TensorFlow here: the GUI lists workers, shows their commands and probes which have joined with
this module alone. A cluster is given either as ``--cluster HOST:PORT,HOST:PORT,... --task N``
(task 0 is the chief) or as a standard ``TF_CONFIG`` file (``--tf-config FILE``); a ``TF_CONFIG``
with a separate ``chief`` job is read as chief first, then the workers in order.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import InvalidSetting

# The coordination service's heartbeat: a dead or hung worker is noticed after this long
# (TensorFlow's default, measured here: 9.4 s for a SIGSTOPped worker; 3 s: 3.0 s).
DEFAULT_HEARTBEAT_S = 3.0


def _parse_address(text: str, where: str) -> str:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InvalidSetting(f"{where}: '{text.strip()}' is not HOST:PORT",
                             "write each worker as HOST:PORT, e.g. 192.168.1.20:12345")
    return f"{host}:{int(port)}"


@dataclass(frozen=True)
class ClusterSpec:
    """The ordered worker addresses (task 0 is the chief) and the task of this process."""

    workers: tuple[str, ...]
    task: int
    heartbeat_s: float = DEFAULT_HEARTBEAT_S

    @classmethod
    def parse(cls, cluster: str, task: int | None) -> "ClusterSpec":
        """From ``--cluster HOST:PORT,HOST:PORT,...`` and ``--task N``."""
        if task is None:
            raise InvalidSetting("--cluster needs --task N", "give this machine's position in the list (0 = chief)")
        parts = [part for part in cluster.split(",") if part.strip()]
        spec = cls(tuple(_parse_address(part, "--cluster") for part in parts), int(task))
        spec.validate()
        return spec

    @classmethod
    def from_tf_config(cls, path: str | Path) -> "ClusterSpec":
        """From a file holding a standard ``TF_CONFIG`` (``{"cluster": {...}, "task": {...}}``)."""
        where = f"TF_CONFIG file '{path}'"
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            cluster, task = data["cluster"], data["task"]
            chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
            kind, index = str(task["type"]), int(task["index"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise InvalidSetting(f"{where} is not a TF_CONFIG ({error})",
                                 'write {"cluster": {"worker": ["HOST:PORT", ...]}, '
                                 '"task": {"type": "worker", "index": N}}') from None
        if set(cluster) - {"chief", "worker"}:
            raise InvalidSetting(f"{where} has jobs {sorted(set(cluster) - {'chief', 'worker'})}",
                                 "ConvScope trains with chief and worker jobs only (no parameter servers)")
        if len(chiefs) > 1 or kind not in ("chief", "worker") or (kind == "chief" and index != 0):
            raise InvalidSetting(f"{where}: task {kind}:{index} does not fit the cluster",
                                 "give one chief at most and a task that is in the cluster")
        offset = len(chiefs) if kind == "worker" else 0
        spec = cls(tuple(_parse_address(a, where) for a in chiefs + workers), offset + index)
        spec.validate()
        return spec

    def validate(self) -> None:
        if len(self.workers) < 2:
            raise InvalidSetting(f"a cluster of {len(self.workers)} worker(s)",
                                 "list at least two HOST:PORT (or train without --cluster)")
        if len(set(self.workers)) != len(self.workers):
            raise InvalidSetting("the cluster lists an address twice", "give every worker its own HOST:PORT")
        if not 0 <= self.task < len(self.workers):
            raise InvalidSetting(f"task {self.task} is not in a cluster of {len(self.workers)} workers",
                                 f"use --task 0 (the chief) to {len(self.workers) - 1}")
        if not 0.5 <= self.heartbeat_s <= 600:
            raise InvalidSetting(f"heartbeat {self.heartbeat_s} s is out of range", "use 0.5 to 600 seconds")

    # ----------------------------------------------------------------- derived values
    @property
    def is_chief(self) -> bool:
        return self.task == 0

    @property
    def address(self) -> str:
        return self.workers[self.task]

    def name_of(self, task: int) -> str:
        """How messages name a worker: ``worker 1 (host:port)``, ``the chief (host:port)``."""
        return f"the chief ({self.workers[0]})" if task == 0 else f"worker {task} ({self.workers[task]})"

    def tf_config(self) -> dict[str, Any]:
        return {"cluster": {"worker": list(self.workers)}, "task": {"type": "worker", "index": self.task}}

    def to_dict(self) -> dict[str, Any]:
        return {"workers": list(self.workers), "task": self.task, "chief": self.workers[0],
                "heartbeat_s": self.heartbeat_s}

    def key(self, run_name: str) -> str:
        """Identifies this cluster run across restarts: the run folder and the hosts (not the ports,
        which a restart may have to change)."""
        hosts = ",".join(address.rpartition(":")[0] for address in self.workers)
        return hashlib.sha256(f"{run_name}\n{hosts}".encode()).hexdigest()[:10]


# TrainConfig fields the `convscope train` command line can set, with their flags.
_FLAGS = {"strategy": "--strategy", "base": "--base", "preset": "--preset", "epochs": "--epochs",
          "head_epochs": "--head-epochs", "batch_size": "--batch-size", "image_size": "--image-size",
          "learning_rate": "--learning-rate", "recipe": "--recipe", "optimizer": "--optimizer",
          "head_pooling": "--head-pooling",
          "augmentation": "--augmentation", "seed": "--seed", "patience": "--patience",
          "finetune_from": "--finetune-from", "head_from_run": "--head-from-run",
          "max_per_class": "--max-per-class", "out": "--out"}


def train_arguments(config) -> list[str]:
    """The ``convscope train`` arguments that give ``config`` (a TrainConfig) on another machine:
    every setting that differs from the default, the data and the run folder."""
    from engine.train.config import TrainConfig  # noqa: PLC0415 (no TensorFlow)

    defaults = TrainConfig(data=config.data)
    if (config.validation_fraction, config.test_fraction) != (defaults.validation_fraction, defaults.test_fraction):
        raise InvalidSetting("the command line has no setting for the validation and test fractions",
                             "train the cluster with the default fractions")
    args = ["--data", str(config.data)]
    for name, flag in _FLAGS.items():
        value = getattr(config, name)
        if value is not None and value != getattr(defaults, name):
            args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if config.augment is not None:
        args.append("--augment" if config.augment else "--no-augment")
    if not config.tensorboard:
        args.append("--no-tensorboard")
    return args


def worker_command(spec: ClusterSpec, task: int, train_args: list[str]) -> str:
    """The exact command worker ``task`` runs: the same ``convscope train`` arguments, its own task."""
    args = ["convscope", "train", *train_args, "--cluster", ",".join(spec.workers), "--task", str(task)]
    return shlex.join(args)


def port_open(address: str, timeout: float = 0.3) -> bool:
    """Whether something listens at ``HOST:PORT`` (a started worker's TensorFlow server does)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def free_local_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (for tests, benchmarks and a one-machine try)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
