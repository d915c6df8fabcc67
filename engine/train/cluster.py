"""Training one model on several machines: ``train_cluster(config, emit, cancel)`` under MultiWorkerMirroredStrategy.

Every machine runs the same ``convscope train`` with ``--cluster ... --task N``. Each worker:

1. scans its own copy of the dataset and makes the split exactly as a one-machine run would;
2. (chief) waits until every other worker's TensorFlow server listens, reporting
   :class:`~engine.events.WorkerJoined` for each, then all start TensorFlow's multi-worker engine
   with the coordination service's heartbeat at ``heartbeat_s`` (3 s: a dead or hung worker is
   noticed in about that; TensorFlow's default took 9.4 s here);
3. publishes what it is about to train — the split's digest, the settings' digest, the epochs its
   folder has finished — in the coordination service's key-value store, reads everyone's, and
   refuses before training, naming the worker, when any differs from the chief's;
4. trains with the engine's own :func:`~engine.train.lifecycle.train` / ``resume`` inside the
   strategy's scope (``model.fit`` with Keras's trainer patched, :mod:`engine.train.keras_multiworker`).

The chief writes the run folder (``--out``, required: a restart of the same commands must find
it); every other worker writes the same files into its own backup folder under the user's data
folder and nothing into the run folder. Restarting the same commands resumes every worker from its
own folder after the last finished epoch. A TensorFlow error caused by a lost peer becomes a
:class:`ClusterError` naming that worker.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import atomic
from engine.errors import ConvScopeError, InvalidSetting
from engine.events import CancelToken, Progress, RunStarted, Sink, Status, WorkerJoined, discard
from engine.train import rundir
from engine.train.cluster_spec import ClusterSpec, port_open
from engine.train.config import TrainConfig, check_writable

HANDSHAKE_TIMEOUT_S = 120  # every worker publishes within seconds of joining; a worker stuck longer is lost
SHUTDOWN_BARRIER_S = 5     # at exit, how long a worker waits for the others before leaving anyway
# Settings that may differ between workers: each machine has its own paths.
LOCAL_SETTINGS = ("data", "out", "runs_root", "tensorboard")


class ClusterError(ConvScopeError):
    """The workers of a cluster disagree, or one of them was lost."""


class LostWorker(ClusterError):
    """A worker stopped responding. Once this is raised, TensorFlow's own shutdown of the cluster
    still waits on that peer (seconds, longer when it hangs rather than dies): a command that has
    reported it leaves the process at once (:func:`leave_after_lost_worker`)."""


def leave_after_lost_worker(error: LostWorker) -> None:
    """Print ``error`` and end the process now, skipping TensorFlow's shutdown, which waits on the
    lost peer (a SIGSTOPped worker held the chief's exit 10-15 s after its message). Everything the
    run keeps was written atomically at the last finished epoch, so nothing is lost."""
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415

    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    if sys.stderr is not None:
        sys.stderr.write(f"convscope: {error}\n")
        sys.stderr.flush()
    os._exit(2)


@dataclass(frozen=True)
class ClusterTrainConfig:
    """A training run (``train``) and this process's place in the cluster (``cluster``)."""

    train: TrainConfig
    cluster: ClusterSpec

    def with_run_folder(self) -> "ClusterTrainConfig":
        """Without ``--out`` the run folder is named after the settings every worker shares
        (``cluster-<strategy>-<digest>`` under the runs folder), so the same command, run again on
        every machine, finds the run to resume; a dated name would differ on each restart."""
        if self.train.out:
            return self
        from engine.paths import default_runs_dir  # noqa: PLC0415

        root = Path(self.train.runs_root) if self.train.runs_root else default_runs_dir()
        name = f"cluster-{self.train.strategy}-{settings_digest(self.train)[:8]}"
        return dataclasses.replace(self, train=dataclasses.replace(self.train, out=str(root / name)))

    def validate(self) -> None:
        self.cluster.validate()
        if not self.train.out:
            raise InvalidSetting("a cluster run needs its run folder", "pass --out RUN_DIR, or leave it out on "
                                 "every worker for the default cluster-<strategy>-<settings> folder")
        if self.train.distribute != "default":
            raise InvalidSetting(f"--distribute {self.train.distribute} cannot be combined with --cluster",
                                 "leave it out: each worker of a cluster trains on all of its own GPUs")
        dataclasses.replace(self.train, out=None).validate()
        if self.cluster.is_chief:  # elsewhere --out only names the run: the chief's path may not exist there
            check_writable(Path(self.train.out), "run folder")


def worker_folder(config: ClusterTrainConfig) -> Path:
    """Where this worker keeps its run files: the run folder on the chief, a backup folder elsewhere."""
    out = Path(config.train.out)
    if config.cluster.is_chief:
        return out
    from engine.paths import user_data_dir  # noqa: PLC0415

    name = re.sub(r"[^A-Za-z0-9._-]+", "-", out.name or "run")
    return user_data_dir() / "cluster" / f"{name}-{config.cluster.key(str(out))}" / f"worker-{config.cluster.task}"


def settings_digest(config: TrainConfig) -> str:
    data = {k: v for k, v in config.resolved().to_dict().items() if k not in LOCAL_SETTINGS}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def split_digest(split) -> str:
    """The split as the workers must share it: classes, and every image's path below the dataset
    root, label and size, in order. Not modification times: a copied dataset matches."""
    digest = hashlib.sha256(("\n".join(split.classes) + "\n").encode())
    root = Path(split.root) if split.root else None
    for subset in ("train", "validation", "test"):
        for path, label in split.subset(subset):
            relative = os.path.relpath(path, root) if root else Path(path).name
            size = os.stat(path).st_size
            digest.update(f"{subset}\0{relative}\0{label}\0{size}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:16]


# =========================================================================== the job
def train_cluster(config: ClusterTrainConfig, emit: Sink = discard, cancel: CancelToken | None = None):
    """Train as worker ``config.cluster.task`` of the cluster. Returns the engine's TrainResult."""
    from engine.train.lifecycle import prepare_split, resume, train  # noqa: PLC0415

    config = config.with_run_folder()
    config.validate()
    spec = config.cluster
    cfg = config.train.resolved()
    folder = worker_folder(config)
    done = _finished_epochs(folder, cfg)
    split, _ = prepare_split(cfg, emit, cancel)
    mine = {"dataset": split_digest(split), "settings": settings_digest(cfg), "epochs_done": done,
            "images": {name: len(split.subset(name)) for name in ("train", "validation", "test")},
            "data": str(cfg.data)}

    strategy = _join(spec, emit, cancel)
    _agree(spec, mine, emit)
    from engine.train import keras_multiworker  # noqa: PLC0415

    keras_multiworker.apply()
    emit(Status(f"training on {strategy.num_replicas_in_sync} replicas in {len(spec.workers)} workers "
                f"(MultiWorkerMirroredStrategy); this is {spec.name_of(spec.task)}"))
    sink = _ManifestNote(folder, spec, emit) if spec.is_chief else emit
    own = dataclasses.replace(cfg, out=str(folder), tensorboard=cfg.tensorboard and spec.is_chief)
    try:
        with strategy.scope():
            return resume(folder, sink, cancel) if done is not None else train(own, sink, cancel)
    except ConvScopeError:
        raise
    except Exception as error:
        lost = _lost_peer(error, spec)
        if lost is None:
            raise
        raise LostWorker(f"{lost} stopped responding; training stopped after epoch "
                           f"{len(rundir.read_history_rows(folder))}",
                           "restart the same command on every worker: training resumes after the last "
                           "finished epoch") from None


def _finished_epochs(folder: Path, cfg: TrainConfig) -> int | None:
    """``None`` for a new run; else the epochs the worker's folder has finished (it will resume)."""
    if not rundir.is_run_dir(folder):
        return None
    stored = TrainConfig.from_dict(rundir.read_config(folder))
    if settings_digest(stored) != settings_digest(cfg):
        raise InvalidSetting(f"'{folder}' holds a run with other settings",
                             "start the cluster with the settings of that run, or choose another --out")
    if rundir.read_state(folder).get("status") == "finished":
        raise InvalidSetting(f"the cluster run in '{folder}' has already finished",
                             "choose another --out to train again")
    return len(rundir.read_history_rows(folder))


def _join(spec: ClusterSpec, emit: Sink, cancel: CancelToken | None):
    """Start TensorFlow's multi-worker engine once every worker is up; returns the strategy."""
    if spec.is_chief:
        others = set(range(1, len(spec.workers)))
        waiting, shown = set(others), None
        while waiting:
            for task in sorted(waiting):
                if port_open(spec.workers[task]):
                    waiting.discard(task)
                    emit(WorkerJoined(task=task, address=spec.workers[task]))
            if waiting != shown:
                shown = set(waiting)
                emit(Progress(done=len(others) - len(waiting), total=len(others), message="workers joined"))
                if waiting:
                    emit(Status(f"waiting for {len(waiting)} worker(s) to join: "
                                + ", ".join(spec.workers[task] for task in sorted(waiting))))
            if cancel is not None:
                cancel.raise_if_cancelled()
            if waiting:
                time.sleep(0.2)
    else:
        emit(Status(f"joining the cluster of {spec.name_of(0)}"))
    from engine.tf_runtime import tf  # noqa: PLC0415

    t = tf()
    _configure_coordination(spec)
    resolver = t.distribute.cluster_resolver.SimpleClusterResolver(
        t.train.ClusterSpec({"worker": list(spec.workers)}), task_type="worker", task_id=spec.task,
        rpc_layer="grpc")
    return t.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def _configure_coordination(spec: ClusterSpec) -> None:
    """The coordination service with a short heartbeat. TensorFlow's strategy configures it with
    defaults unless it is configured first; no public API sets the heartbeat (tensorflow 2.21)."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2  # noqa: PLC0415
    from tensorflow.python.eager import context  # noqa: PLC0415

    context.context().configure_coordination_service(
        service_type="standalone", service_leader="/job:worker/replica:0/task:0",
        heartbeat_timeout_in_ms=int(spec.heartbeat_s * 1000),
        shutdown_barrier_timeout_in_ms=SHUTDOWN_BARRIER_S * 1000,
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name="worker", num_tasks=len(spec.workers))])


def _agree(spec: ClusterSpec, mine: dict[str, Any], emit: Sink) -> None:
    """Exchange what each worker is about to train; every worker refuses the same differences."""
    from tensorflow.python.eager import context  # noqa: PLC0415

    store = context.context()
    store.set_config_key_value(f"convscope/worker/{spec.task}", json.dumps(mine))
    seen = {}
    for task in range(len(spec.workers)):
        try:
            seen[task] = json.loads(store.get_config_key_value(f"convscope/worker/{task}",
                                                               timeout_in_ms=HANDSHAKE_TIMEOUT_S * 1000))
        except Exception:  # noqa: BLE001 (a TensorFlow error: the worker never published)
            raise ClusterError(f"{spec.name_of(task)} did not report its dataset and settings within "
                               f"{HANDSHAKE_TIMEOUT_S} s", "check that it runs the same ConvScope version") from None
    chief = seen[0]
    for task, other in seen.items():
        if task == 0:
            continue
        name = spec.name_of(task)
        if other["dataset"] != chief["dataset"]:
            raise ClusterError(
                f"{name} sees another dataset than the chief: its '{other['data']}' splits into "
                f"{other['images']} images, the chief's '{chief['data']}' into {chief['images']}",
                "give every worker an identical copy of the dataset (same files, names and sizes)")
        if other["settings"] != chief["settings"]:
            raise ClusterError(f"{name} was started with other training settings than the chief",
                               "start every worker with the same convscope train arguments")
        if other["epochs_done"] != chief["epochs_done"]:
            raise ClusterError(
                f"{name} has {_epochs(other)} but the chief has {_epochs(chief)}",
                "restart every worker of the run (a worker's backup folder was removed or replaced?)")
    emit(Status(f"all {len(spec.workers)} workers agree: dataset {chief['dataset']}, settings {chief['settings']}"
                + (f", resuming after epoch {chief['epochs_done']}" if chief["epochs_done"] else "")))


def _epochs(info: dict[str, Any]) -> str:
    return "no run yet" if info["epochs_done"] is None else f"finished {info['epochs_done']} epoch(s)"


def _lost_peer(error: Exception, spec: ClusterSpec) -> str | None:
    """Name the worker a TensorFlow error of a lost peer is about (or None if it is not one)."""
    from engine.tf_runtime import tf  # noqa: PLC0415

    errors = tf().errors
    if not isinstance(error, (errors.UnavailableError, errors.AbortedError, errors.CancelledError,
                              errors.DeadlineExceededError, errors.InternalError)):
        return None  # e.g. an InvalidArgumentError of this worker's own step: a bug, shown as it is
    text = str(error)
    tasks = {int(m) for m in re.findall(r"/job:worker/replica:\d+/task:(\d+)", text)} - {spec.task}
    tasks = {task for task in tasks if task < len(spec.workers)}
    if tasks:
        return " and ".join(spec.name_of(task) for task in sorted(tasks))
    return "a worker of the cluster (" + ", ".join(a for i, a in enumerate(spec.workers) if i != spec.task) + ")"


class _ManifestNote:
    """A sink that adds the cluster to the chief's manifest.json when the run starts."""

    def __init__(self, folder: Path, spec: ClusterSpec, emit: Sink) -> None:
        self.folder, self.spec, self.emit = folder, spec, emit

    def __call__(self, event) -> None:
        if isinstance(event, RunStarted):
            manifest = rundir.read_json(self.folder / rundir.MANIFEST, {}) or {}
            manifest["cluster"] = {**self.spec.to_dict(), "strategy": "MultiWorkerMirroredStrategy"}
            atomic.write_json(self.folder / rundir.MANIFEST, manifest)
        self.emit(event)
