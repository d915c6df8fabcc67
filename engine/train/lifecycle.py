"""A training run's life cycle: ``train(config, emit, cancel)`` and ``resume(run_dir, emit, cancel)``.

One home for what every run does around its strategy (:mod:`engine.train.strategies`):

1. validate and resolve the settings; scan the data and make the split (``prepare_split``);
2. make the run folder and write ``config.json``, ``split/`` and ``manifest.json`` (versions, seed,
   dataset fingerprint, precision) — :mod:`engine.train.rundir` owns the folder's layout and files;
3. open the run: ``state.json`` and ``history.csv`` (:class:`~engine.train.rundir.RunState`), the
   event log ``events.jsonl``, the seed, the ``tf.distribute`` scope (the caller's current strategy,
   the default one on one device, or with ``distribute="mirrored"`` a MirroredStrategy over every
   GPU or logical CPU), the precision policy;
4. hand a :class:`~engine.train.context.RunContext` to the strategy's ``train(ctx)``;
5. close the run: ``finalize``, status finished / cancelled / failed, the closing event.

``resume`` re-enters at step 3 from the run folder alone, after removing the half-written files of
the interrupted process. Every run is seeded, checkpointed atomically, cancellable within one batch.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine import __version__, atomic
from engine.errors import ConvScopeError, DatasetError, InvalidSetting
from engine.events import (
    BatchProgress,
    CancelToken,
    JobCancelled,
    Progress,
    RunCancelled,
    RunFailed,
    RunFinished,
    RunStarted,
    Sink,
    Status,
    Warning_,
    discard,
)
from engine.precision import choose_precision, keras_policy
from engine.tf_runtime import keras, tf
from engine.train import rundir
from engine.train.config import TrainConfig
from engine.train.context import RunContext
from engine.train.rundir import RunState


@dataclass
class TrainResult:
    run_dir: str
    history: dict[str, list[float]]
    best_metrics: dict[str, float]
    status: str  # "finished" | "cancelled"
    epochs_done: int = 0
    warnings: list[str] = field(default_factory=list)


# =========================================================================== public API
def train(config: TrainConfig, emit: Sink = discard, cancel: CancelToken | None = None, *,
          prepared: tuple | None = None) -> TrainResult:
    """Validate ``config``, make a run folder, and train. Returns when finished or cancelled.

    ``prepared``: ``(split, scan_result)`` made by the caller (a study trains every rung on its one
    frozen split); default: :func:`prepare_split` of ``config.data``."""
    config.validate()
    cfg = config.resolved()
    cfg.validate()
    head_file = rundir.best_or_last(cfg.head_from_run) if cfg.head_from_run else None
    if head_file is not None and head_file.is_file():  # a hostile or damaged file: refused before a run folder exists
        from engine.models.archive import read_checked  # noqa: PLC0415 (no TensorFlow)

        read_checked(head_file)
    split, scan_result = prepared if prepared is not None else prepare_split(cfg, emit, cancel)
    root = Path(cfg.runs_root) if cfg.runs_root else None
    if cfg.out:
        run_dir = atomic.make_folder(cfg.out, exist_ok=True)
    else:
        from engine.paths import default_runs_dir  # noqa: PLC0415

        run_dir = rundir.new_run_dir(root or default_runs_dir(), cfg.strategy, cfg.model_name)
    cfg = dataclasses.replace(cfg, out=str(run_dir))
    write_run_files(run_dir, cfg, split, scan_result)
    return _run(run_dir, cfg, split, emit, cancel, resuming=False)


def resume(run_dir: str | os.PathLike, emit: Sink = discard, cancel: CancelToken | None = None) -> TrainResult:
    """Continue an interrupted (crashed or cancelled) run after its last finished epoch."""
    from engine.data.split import load_split  # noqa: PLC0415

    run_dir = rundir.require_run_dir(run_dir)
    data = rundir.read_config(run_dir)
    cfg = TrainConfig.from_dict(data)
    state = rundir.read_state(run_dir)
    if state.get("status") == "finished":
        raise InvalidSetting(f"run '{run_dir}' has already finished",
                             "start a new run (train) to train longer or differently")
    split = load_split(run_dir / rundir.SPLIT)
    leftovers = atomic.leftover_temp_files(run_dir)
    for path in leftovers:  # half-written saves of the process that was killed
        path.unlink(missing_ok=True)
    if leftovers:
        emit(Status(f"removed {len(leftovers)} unfinished temporary file(s) of the interrupted run: "
                    + ", ".join(p.name for p in leftovers)))
    return _run(run_dir, cfg, split, emit, cancel, resuming=True)


# =========================================================================== data
def _limit(items: list[tuple[str, int]], per_class: int | None) -> list[tuple[str, int]]:
    if not per_class:
        return list(items)
    taken: dict[int, int] = {}
    out = []
    for path, label in items:
        if taken.get(label, 0) < per_class:
            taken[label] = taken.get(label, 0) + 1
            out.append((path, label))
    return out


def scan_data(cfg: TrainConfig, emit: Sink, cancel: CancelToken | None):
    """Scan ``cfg.data`` (its warnings become Warning_ events)."""
    from engine.data.scan import ScanConfig, scan  # noqa: PLC0415

    emit(Status(f"scanning {cfg.data}"))
    scan_result = scan(ScanConfig(root=str(cfg.data)), emit=emit, cancel=cancel)
    for message in getattr(scan_result, "warnings", []) or []:
        emit(Warning_(str(message)))
    return scan_result


def prepare_split(cfg: TrainConfig, emit: Sink, cancel: CancelToken | None, scan_result=None):
    """Scan ``cfg.data`` (unless ``scan_result`` is given) and split it (seeded, stratified);
    DatasetError when a subset would be empty. Returns ``(split, scan_result)``."""
    from engine.data.split import Split, make_split  # noqa: PLC0415

    if scan_result is None:
        scan_result = scan_data(cfg, emit, cancel)
    if len(scan_result.classes) < 2:
        raise DatasetError(f"'{cfg.data}' has only {len(scan_result.classes)} class folder(s)",
                           "a classifier needs at least two class folders")
    split = make_split(scan_result, cfg.validation_fraction, cfg.test_fraction, seed=cfg.seed)
    if cfg.max_per_class:
        split = Split(split.classes, _limit(split.train, cfg.max_per_class),
                      _limit(split.validation, cfg.max_per_class), _limit(split.test, cfg.max_per_class),
                      root=split.root, meta={**split.meta, "max_per_class": cfg.max_per_class})
    if not split.train:
        raise DatasetError(f"'{cfg.data}' leaves no training images", "add images or lower the fractions")
    if not split.validation:
        raise DatasetError(f"'{cfg.data}' leaves no validation images",
                           "add images, add a validation/ folder, or raise the validation fraction")
    return split, scan_result


def write_run_files(run_dir: Path, cfg: TrainConfig, split, scan_result) -> None:
    """config.json, split/ and manifest.json of a new run."""
    from engine.data.split import save_split  # noqa: PLC0415

    config = cfg.to_dict()
    config.update(classes=list(split.classes), num_classes=len(split.classes), image_size=cfg.image_size,
                  created=time.strftime("%Y-%m-%dT%H:%M:%S"), convscope_version=__version__)
    atomic.write_json(run_dir / rundir.CONFIG, config)
    save_split(split, run_dir / rundir.SPLIT)
    t, k = tf(), keras()
    import numpy as np  # noqa: PLC0415

    manifest = {
        "convscope": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow": t.__version__,
        "keras": k.__version__,
        "numpy": np.__version__,
        "seed": cfg.seed,
        "dataset": {"root": str(scan_result.root), "layout": scan_result.layout,
                    "fingerprint": scan_result.fingerprint, "classes": list(split.classes)},
        "split_counts": split.counts(),
        "split_folder": rundir.SPLIT,
        "cpu_count": os.cpu_count(),
        "precision": choose_precision(cfg.precision).to_dict(),  # what was used and why
    }
    atomic.write_json(run_dir / rundir.MANIFEST, manifest)


# =========================================================================== the run
def _distribution(cfg: TrainConfig):
    t = tf()
    if cfg.distribute == "mirrored":
        devices = t.config.list_logical_devices("GPU") or t.config.list_logical_devices("CPU")
        return t.distribute.MirroredStrategy(devices=[d.name for d in devices])
    return t.distribute.get_strategy()


def _run(run_dir: Path, cfg: TrainConfig, split, emit: Sink, cancel: CancelToken | None,
         resuming: bool) -> TrainResult:
    from engine.train.strategies import get_strategy  # noqa: PLC0415 (the registry imports this module)

    k = keras()
    sink = rundir.EventLog(run_dir, emit, skip=(BatchProgress, Progress))
    rows = rundir.read_history_rows(run_dir) if resuming else []
    state = rundir.read_state(run_dir) if resuming else {}
    strategy = get_strategy(cfg.strategy)
    planned = strategy.planned_epochs(cfg)
    state.update(status="running", strategy=cfg.strategy, epochs_planned=state.get("epochs_planned", planned))
    run = RunState(run_dir, rows, state)
    run.save()
    batch_size = cfg.batch_size
    ctx = RunContext(cfg=cfg, run_dir=run_dir, split=split, emit=sink, cancel=cancel, run=run,
                     scope=_distribution(cfg), resuming=resuming, batch_size=batch_size)
    if cfg.distribute == "mirrored":
        sink(Status(f"training on {ctx.scope.num_replicas_in_sync} replicas (MirroredStrategy)"))
    if batch_size > len(split.train):
        ctx.batch_size = len(split.train)
        ctx.warn(f"batch size {batch_size} is larger than the {len(split.train)} training images; "
                 f"using {ctx.batch_size}")
    k.utils.set_random_seed(int(cfg.seed) + run.epochs_done)
    sink(RunStarted(run_dir=str(run_dir), strategy=cfg.strategy, epochs=int(state["epochs_planned"]),
                    phase=strategy.first_phase(cfg, state)))
    status = "finished"
    try:
        try:
            with keras_policy(choose_precision(cfg.precision).policy):
                strategy.train(ctx)
        except JobCancelled:
            status = "cancelled"
        if ctx.finalize is not None:
            ctx.finalize()
    except BaseException as error:
        state["status"] = "failed"
        state["error"] = str(error)
        failed = RunFailed(run_dir=str(run_dir), error=str(error) or type(error).__name__)
        try:  # best effort: on a full disk these writes fail too, and the first error is the one to show
            run.save()
            sink(failed)
        except (OSError, ConvScopeError):
            sink.emit(failed)
        raise
    state["status"] = status
    run.save()
    best = dict(state.get("best_metrics", {}))
    if status == "cancelled":
        sink(RunCancelled(run_dir=str(run_dir), last_epoch=run.epochs_done))
    else:
        sink(RunFinished(run_dir=str(run_dir), best_metrics=best))
    return TrainResult(run_dir=str(run_dir), history=rundir.read_history(run_dir), best_metrics=best,
                       status=status, epochs_done=run.epochs_done, warnings=ctx.warnings)
