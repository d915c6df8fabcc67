"""The four training strategies of DLwP chapter 5, run as one job: ``train(config, emit, cancel)``.

- ``scratch``: a preset (book-scratch, mini-xception) from random weights; augmentation, when on,
  is a block inside the model (active only in training).
- ``features``: the frozen base runs once over train/validation/test; its (pooled or flattened)
  features are cached on disk (:mod:`engine.train.features`) and a dense head is trained on them.
  The saved best/last models are the FULL model (base + pooling + head), so prediction and Grad-CAM
  take raw images.
- ``features-augmented``: the frozen base inside the model, trained end to end with augmentation.
- ``finetune``: phase "head" = frozen base + head until early stopping (or the model of a finished
  features-augmented run, ``head_from_run``); phase "finetune" = unfreeze the base from
  ``finetune_from`` (default: the registry's) at a low learning rate. BatchNorm layers stay frozen
  and in inference mode. Epoch numbers continue across phases; events carry the phase.

Every run: seeded (``keras.utils.set_random_seed``), early stopping on validation loss, atomic
best/last checkpoints, resumable (``resume(run_dir)`` continues after the last finished epoch from
``last.keras``, which includes the optimizer state), cancellable within one batch, reporting typed
events. Building and training happen inside a ``tf.distribute`` strategy scope: the caller's
current strategy (the default one on one device) or, with ``distribute="mirrored"``, a
MirroredStrategy over every GPU (or every logical CPU when there is no GPU).
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from engine import __version__, atomic
from engine.errors import ConvScopeError, DatasetError, InvalidSetting
from engine.memory import available_memory as _available_memory  # patched by tests
from engine.precision import choose_precision, keras_policy
from engine.events import (
    BatchProgress,
    CancelToken,
    CheckpointSaved,
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
from engine.tf_runtime import keras, tf
from engine.train import rundir
from engine.train.callbacks import RunState, make_engine_callback
from engine.train.config import TrainConfig

MONITOR = "val_loss"


@dataclass
class TrainResult:
    run_dir: str
    history: dict[str, list[float]]
    best_metrics: dict[str, float]
    status: str  # "finished" | "cancelled"
    epochs_done: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Context:
    cfg: TrainConfig
    run_dir: Path
    split: Any
    emit: Sink
    cancel: CancelToken | None
    run: RunState
    scope: Any
    resuming: bool
    batch_size: int
    warnings: list[str] = field(default_factory=list)
    finalize: Callable[[], None] | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.split.classes)

    @property
    def num_classes(self) -> int:
        return len(self.split.classes)

    @property
    def size(self) -> int:
        return int(self.cfg.image_size)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        self.emit(Warning_(message))


# =========================================================================== public API
def train(config: TrainConfig, emit: Sink = discard, cancel: CancelToken | None = None) -> TrainResult:
    """Validate ``config``, make a run folder, and train. Returns when finished or cancelled."""
    config.validate()
    cfg = config.resolved()
    cfg.validate()
    head_file = _head_run_model(Path(cfg.head_from_run)) if cfg.head_from_run else None
    if head_file is not None and head_file.is_file():  # a hostile or damaged file: refused before a run folder exists
        from engine.models.archive import read_checked  # noqa: PLC0415 (no TensorFlow)

        read_checked(head_file)
    split, scan_result = _prepare_split(cfg, emit, cancel)
    root = Path(cfg.runs_root) if cfg.runs_root else None
    if cfg.out:
        run_dir = atomic.make_folder(cfg.out, exist_ok=True)
    else:
        from engine.paths import default_runs_dir  # noqa: PLC0415

        run_dir = rundir.new_run_dir(root or default_runs_dir(), cfg.strategy, cfg.model_name)
    cfg = dataclasses.replace(cfg, out=str(run_dir))
    _write_run_files(run_dir, cfg, split, scan_result)
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


def _prepare_split(cfg: TrainConfig, emit: Sink, cancel: CancelToken | None):
    from engine.data.scan import ScanConfig, scan  # noqa: PLC0415
    from engine.data.split import Split, make_split  # noqa: PLC0415

    emit(Status(f"scanning {cfg.data}"))
    scan_result = scan(ScanConfig(root=str(cfg.data)), emit=emit, cancel=cancel)
    for message in getattr(scan_result, "warnings", []) or []:
        emit(Warning_(str(message)))
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


def _write_run_files(run_dir: Path, cfg: TrainConfig, split, scan_result) -> None:
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


def _datasets(ctx: _Context):
    from engine.data.pipeline import make_dataset, suggest_cache  # noqa: PLC0415

    cfg = ctx.cfg
    out = []
    for subset, shuffle in (("train", True), ("validation", False)):
        items = ctx.split.subset(subset)
        cache = suggest_cache(len(items), ctx.size, ctx.run_dir / "cache" / subset)
        out.append(make_dataset(items, ctx.size, ctx.batch_size, num_classes=ctx.num_classes,
                                shuffle=shuffle, seed=cfg.seed, cache=cache, emit=ctx.emit))
    return out[0], out[1]


# =========================================================================== the job
def _distribution(cfg: TrainConfig):
    t = tf()
    if cfg.distribute == "mirrored":
        devices = t.config.list_logical_devices("GPU") or t.config.list_logical_devices("CPU")
        return t.distribute.MirroredStrategy(devices=[d.name for d in devices])
    return t.distribute.get_strategy()


def _run(run_dir: Path, cfg: TrainConfig, split, emit: Sink, cancel: CancelToken | None,
         resuming: bool) -> TrainResult:
    k = keras()
    sink = rundir.EventLog(run_dir, emit, skip=(BatchProgress, Progress))
    rows = rundir.read_history_rows(run_dir) if resuming else []
    state = rundir.read_state(run_dir) if resuming else {}
    planned = cfg.epochs + ((cfg.head_epochs or 0) if cfg.strategy == "finetune" else 0)
    state.update(status="running", strategy=cfg.strategy, epochs_planned=state.get("epochs_planned", planned))
    run = RunState(run_dir, rows, state)
    run.save()
    batch_size = cfg.batch_size
    ctx = _Context(cfg=cfg, run_dir=run_dir, split=split, emit=sink, cancel=cancel, run=run,
                   scope=_distribution(cfg), resuming=resuming, batch_size=batch_size)
    if cfg.distribute == "mirrored":
        sink(Status(f"training on {ctx.scope.num_replicas_in_sync} replicas (MirroredStrategy)"))
    if batch_size > len(split.train):
        ctx.batch_size = len(split.train)
        ctx.warn(f"batch size {batch_size} is larger than the {len(split.train)} training images; "
                 f"using {ctx.batch_size}")
    k.utils.set_random_seed(int(cfg.seed) + run.epochs_done)
    sink(RunStarted(run_dir=str(run_dir), strategy=cfg.strategy, epochs=int(state["epochs_planned"]),
                    phase="head" if cfg.strategy == "finetune" and not state.get("phase1_done") else
                    ("finetune" if cfg.strategy == "finetune" else "train")))
    runner = {"scratch": _scratch, "features": _features, "features-augmented": _features_augmented,
              "finetune": _finetune}[cfg.strategy]
    status = "finished"
    try:
        try:
            with keras_policy(choose_precision(cfg.precision).policy):
                runner(ctx)
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


# =========================================================================== helpers
def _save_model(model, path: Path) -> str:
    atomic.save_with(path, model.save, suffix=".keras")
    return str(path)


def _checkpointer(ctx: _Context, model, prefix: str = "") -> Callable[[str, int], str]:
    def save(kind: str, epoch: int) -> str:
        return _save_model(model, ctx.run_dir / f"{prefix}{kind}.keras")

    return save


def load_keras(path: Path):
    """Load a run's own checkpoint (optimizer state included) through the safe loader, which
    also registers ConvScope's augmentation layer before Keras deserializes it."""
    from engine.models.loading import load_keras_file  # noqa: PLC0415

    return load_keras_file(path, compile=True)


def _augmentation(ctx: _Context):
    if not ctx.cfg.augment:
        return None
    from engine.data.augment import build_augmentation  # noqa: PLC0415

    return build_augmentation(ctx.cfg.augmentation, seed=ctx.cfg.seed)


# A dense head on cached features takes about a millisecond per batch, less than Keras's own
# per-step overhead: running this many batches per compiled call makes a head epoch several times
# faster (bench/bench_training.py). Cancel then acts within one such group (milliseconds).
HEAD_STEPS_PER_EXECUTION = 16


def _compile(ctx: _Context, model, learning_rate: float, steps_per_execution: int = 1) -> None:
    from engine.models.presets import compile_model  # noqa: PLC0415

    compile_model(model, ctx.num_classes, float(learning_rate), steps_per_execution)


def _activation_floats(model) -> int:
    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            total += _activation_floats(layer)
            continue
        try:
            shape = layer.output.shape
        except Exception:  # a layer used several times has no single output
            continue
        count = 1
        for dim in shape[1:]:
            count *= int(dim or 1)
        total += count
    return total


def estimate_training_bytes(model, batch_size: int) -> int:
    """A rough peak-memory estimate of one training step: activations kept for the backward pass
    (x2 for their gradients) plus weights, gradients and RMSprop state."""
    return int(batch_size * _activation_floats(model) * 4 * 2 + model.count_params() * 4 * 3)


def _check_memory(ctx: _Context, model) -> None:
    need = estimate_training_bytes(model, ctx.batch_size)
    have = _available_memory()
    if have and need > 0.8 * have:
        ctx.warn(f"training may run out of memory: about {need / 2**30:.1f} GiB needed for batch size "
                 f"{ctx.batch_size} at {ctx.size} px, {have / 2**30:.1f} GiB available — "
                 "lower the batch size or the image size")


def _tensorboard_available(ctx: _Context) -> bool:
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("tensorboard") is not None:
        return True
    if not ctx.run.state.get("tensorboard_warned"):
        ctx.run.state["tensorboard_warned"] = True
        ctx.warn("TensorBoard logs are not written: the tensorboard package is not installed")
    return False


def _fit(ctx: _Context, model, train_ds, val_ds, *, end_epoch: int, total_epochs: int, phase: str,
         save: Callable[[str, int], str]) -> None:
    k = keras()
    start = ctx.run.epochs_done
    if start >= end_epoch:
        return
    callback = make_engine_callback(run=ctx.run, emit=ctx.emit, cancel=ctx.cancel, save=save,
                                    total_epochs=total_epochs, phase=phase, monitor=MONITOR)
    callbacks = [callback]
    if ctx.cfg.patience:
        callbacks.append(k.callbacks.EarlyStopping(monitor=MONITOR, patience=int(ctx.cfg.patience)))
    if ctx.cfg.tensorboard and _tensorboard_available(ctx):
        callbacks.append(k.callbacks.TensorBoard(log_dir=str(ctx.run_dir / rundir.LOGS), write_graph=False,
                                                 update_freq="epoch", profile_batch=0))
    if ctx.cancel is not None:
        ctx.cancel.raise_if_cancelled()
    model.fit(train_ds, validation_data=val_ds, epochs=end_epoch, initial_epoch=start,
              callbacks=callbacks, shuffle=False, verbose=0)
    if callback.cancelled:
        raise JobCancelled()


def _ensure_last(ctx: _Context, model) -> None:
    """A cancelled or crashed run always leaves a loadable last.keras."""
    last = ctx.run_dir / rundir.LAST
    if not last.exists():
        path = _save_model(model, last)
        ctx.emit(CheckpointSaved(path=path, epoch=ctx.run.epochs_done, best=False))


def _build_or_resume(ctx: _Context, build: Callable[[], Any]):
    last = ctx.run_dir / rundir.LAST
    with ctx.scope.scope():
        if ctx.resuming and last.exists() and ctx.run.epochs_done > 0:
            ctx.emit(Status(f"resuming after epoch {ctx.run.epochs_done} from {last.name}"))
            return load_keras(last), True
        return build(), False


# =========================================================================== strategies
def _scratch(ctx: _Context) -> None:
    from engine.models.presets import build_preset  # noqa: PLC0415

    cfg = ctx.cfg

    def build():
        model = build_preset(cfg.preset, ctx.size, ctx.num_classes, augmentation=_augmentation(ctx))
        _compile(ctx, model, cfg.learning_rate)
        return model

    model, _ = _build_or_resume(ctx, build)
    ctx.finalize = lambda: _ensure_last(ctx, model)
    _check_memory(ctx, model)
    train_ds, val_ds = _datasets(ctx)
    _fit(ctx, model, train_ds, val_ds, end_epoch=cfg.epochs, total_epochs=cfg.epochs, phase="train",
         save=_checkpointer(ctx, model))


def _build_base(ctx: _Context):
    from engine.bases.registry import get_base  # noqa: PLC0415

    spec = get_base(ctx.cfg.base)
    status = spec.weights_status()
    if not status.present:
        ctx.warn(f"base '{spec.name}' has no pretrained weights here ({status.source}); "
                 "it starts from random weights")
    ctx.emit(Status(f"building base {spec.label} at {ctx.size} px"))
    base = spec.build(include_top=False, input_size=ctx.size)
    base.trainable = False
    return spec, base


def _new_transfer_model(ctx: _Context, learning_rate: float):
    from engine.models.presets import build_head, build_transfer_model, feature_dim  # noqa: PLC0415

    spec, base = _build_base(ctx)
    head = build_head(feature_dim(base, ctx.cfg.head_pooling), ctx.num_classes)
    model = build_transfer_model(base, head, ctx.cfg.head_pooling, augmentation=_augmentation(ctx),
                                 name=f"{base.name}_classifier")
    _compile(ctx, model, learning_rate)
    return spec, model


def _features_augmented(ctx: _Context) -> None:
    cfg = ctx.cfg
    model, _ = _build_or_resume(ctx, lambda: _new_transfer_model(ctx, cfg.learning_rate)[1])
    ctx.finalize = lambda: _ensure_last(ctx, model)
    _check_memory(ctx, model)
    train_ds, val_ds = _datasets(ctx)
    _fit(ctx, model, train_ds, val_ds, end_epoch=cfg.epochs, total_epochs=cfg.epochs, phase="train",
         save=_checkpointer(ctx, model))


# --------------------------------------------------------------------------- features (cached)
def _features(ctx: _Context) -> None:
    from engine.data.pipeline import make_dataset, without_autotune_model  # noqa: PLC0415
    from engine.models.presets import build_feature_extractor, build_head, feature_dim  # noqa: PLC0415
    from engine.train import features as cache  # noqa: PLC0415

    cfg = ctx.cfg
    t = tf()
    with ctx.scope.scope():
        spec, base = _build_base(ctx)
        extractor = build_feature_extractor(base, cfg.head_pooling)
    head_holder: dict[str, Any] = {}

    def finalize() -> None:
        _assemble_full_models(ctx, base, head_holder.get("head"))

    ctx.finalize = finalize
    weights = cache.weights_identity(spec)
    fingerprint = str(ctx.split.meta.get("fingerprint", ""))
    arrays = {}
    for subset in ("train", "validation", "test"):
        items = ctx.split.subset(subset)
        if not items:
            continue
        key = cache.cache_key(base=spec.name, weights=weights, image_size=ctx.size, pooling=cfg.head_pooling,
                              items=items, fingerprint=fingerprint)

        def compute(items=items, subset=subset):
            ds = make_dataset(items, ctx.size, ctx.batch_size, num_classes=ctx.num_classes, shuffle=False,
                              cache=None)
            batches = math.ceil(len(items) / ctx.batch_size)
            ctx.emit(Status(f"extracting {subset} features of {len(items)} images with {spec.name}"))
            started = time.perf_counter()
            result = cache.extract(extractor, ds, batches, emit=ctx.emit, cancel=ctx.cancel, subset=subset)
            ctx.emit(Status(f"{subset} features: {result[0].shape} in {time.perf_counter() - started:.1f} s"))
            return result

        feats, labels, reused = cache.cached_features(key=key, subset=subset, compute=compute, emit=ctx.emit)
        arrays[subset] = (feats, labels)
        ctx.run.state.setdefault("feature_cache", {})[subset] = {"key": key, "reused": reused}
    ctx.run.save()

    train_x, train_y = arrays["train"]
    val_x, val_y = arrays["validation"]
    train_ds = without_autotune_model(t.data.Dataset.from_tensor_slices((train_x, train_y))
                                      .shuffle(len(train_x), seed=cfg.seed, reshuffle_each_iteration=True)
                                      .batch(ctx.batch_size).prefetch(2))
    val_ds = without_autotune_model(t.data.Dataset.from_tensor_slices((val_x, val_y)).batch(ctx.batch_size).prefetch(2))

    head_last = ctx.run_dir / "head_last.keras"
    with ctx.scope.scope():
        if ctx.resuming and head_last.exists() and ctx.run.epochs_done > 0:
            ctx.emit(Status(f"resuming after epoch {ctx.run.epochs_done} from {head_last.name}"))
            head = load_keras(head_last)
        else:
            head = build_head(feature_dim(base, cfg.head_pooling), ctx.num_classes)
            _compile(ctx, head, cfg.learning_rate, HEAD_STEPS_PER_EXECUTION)
    head_holder["head"] = head
    _fit(ctx, head, train_ds, val_ds, end_epoch=cfg.epochs, total_epochs=cfg.epochs, phase="train",
         save=_checkpointer(ctx, head, prefix="head_"))


def _assemble_full_models(ctx: _Context, base, head) -> None:
    """Write best.keras / last.keras as base + pooling + head (from head_best / head_last)."""
    from engine.models.presets import build_head, build_transfer_model, feature_dim  # noqa: PLC0415

    for kind in ("best", "last"):
        head_file = ctx.run_dir / f"head_{kind}.keras"
        with ctx.scope.scope():
            if head_file.exists():
                part = load_keras(head_file)
            elif kind == "last":
                part = head if head is not None else build_head(feature_dim(base, ctx.cfg.head_pooling),
                                                                ctx.num_classes)
            else:
                continue
            # Saved uncompiled: it is for prediction, evaluation and inspection; training resumes
            # from head_last.keras, which keeps the optimizer state.
            full = build_transfer_model(base, part, ctx.cfg.head_pooling, name=f"{base.name}_classifier")
        path = _save_model(full, ctx.run_dir / f"{kind}.keras")
        epoch = int(ctx.run.state.get("best_epoch", ctx.run.epochs_done)) if kind == "best" else ctx.run.epochs_done
        ctx.emit(CheckpointSaved(path=path, epoch=epoch, best=kind == "best"))


# --------------------------------------------------------------------------- finetune
def unfreeze_from(base, layer_name: str) -> int:
    """Make ``layer_name`` and every later layer of ``base`` trainable, BatchNorm excepted.
    Returns the number of trainable weight tensors."""
    k = keras()
    from engine.bases.locate import finetune_layer_names  # noqa: PLC0415

    names = [layer.name for layer in base.layers]
    if layer_name not in names:
        raise InvalidSetting(f"base '{base.name}' has no layer '{layer_name}'",
                             "choose one of: " + ", ".join(finetune_layer_names(base)))
    base.trainable = True
    reached = False
    for layer in base.layers:
        reached = reached or layer.name == layer_name
        layer.trainable = reached and not isinstance(layer, k.layers.BatchNormalization)
    return len(base.trainable_weights)


def _finetune(ctx: _Context) -> None:
    from engine.bases.locate import base_for_finetuning  # noqa: PLC0415
    from engine.bases.registry import get_base  # noqa: PLC0415

    cfg = ctx.cfg
    state = ctx.run.state
    start_layer = cfg.finetune_from or get_base(cfg.base).finetune_from
    phase2_started = any(row.get("phase") == "finetune" for row in ctx.run.rows)

    def build():
        if cfg.head_from_run:
            return _model_from_run(ctx, Path(cfg.head_from_run))
        return _new_transfer_model(ctx, cfg.head_learning_rate)[1]

    model, resumed = _build_or_resume(ctx, build)
    if cfg.head_from_run and not resumed and not state.get("phase1_done"):
        state.update(phase1_done=True, phase1_epochs=0)
        ctx.run.save()
    base = base_for_finetuning(model, cfg.base, start_layer).model
    ctx.finalize = lambda: _ensure_last(ctx, model)
    _check_memory(ctx, model)
    train_ds, val_ds = _datasets(ctx)
    head_epochs = int(cfg.head_epochs or cfg.epochs)
    if not state.get("phase1_done"):
        _fit(ctx, model, train_ds, val_ds, end_epoch=head_epochs, total_epochs=head_epochs + cfg.epochs,
             phase="head", save=_checkpointer(ctx, model))
        state.update(phase1_done=True, phase1_epochs=ctx.run.epochs_done)
        ctx.run.save()
    phase1_epochs = int(state.get("phase1_epochs", 0))
    end = phase1_epochs + cfg.epochs
    state["epochs_planned"] = end
    with ctx.scope.scope():
        if not (resumed and phase2_started):
            trainable = unfreeze_from(base, start_layer)
            ctx.emit(Status(f"fine-tuning {base.name} from {start_layer}: {trainable} trainable weight "
                            f"tensors, learning rate {cfg.learning_rate:g}"))
            _compile(ctx, model, cfg.learning_rate)
    _fit(ctx, model, train_ds, val_ds, end_epoch=end, total_epochs=end, phase="finetune",
         save=_checkpointer(ctx, model))


def _head_run_model(source: Path) -> Path:
    return source / rundir.BEST if (source / rundir.BEST).exists() else source / rundir.LAST


def _model_from_run(ctx: _Context, source: Path):
    info = rundir.read_config(source)
    if info.get("strategy") not in ("features-augmented", "finetune"):
        raise InvalidSetting(f"run '{source}' used the {info.get('strategy')} strategy",
                             "give a features-augmented run (its model contains the base)")
    if int(info.get("image_size", -1)) != ctx.size or list(info.get("classes", [])) != ctx.classes:
        raise InvalidSetting(f"run '{source}' has other classes or image size than this run",
                             f"use image size {info.get('image_size')} and the same data")
    path = _head_run_model(source)
    ctx.emit(Status(f"reusing the trained head of {path}"))
    return _with_this_runs_augmentation(ctx, load_keras(path), info)


def _with_this_runs_augmentation(ctx: _Context, model, source_config: dict):
    """The reused model rebuilt around its trained base and head, with THIS run's augmentation
    (the head run may have used another setting, or none)."""
    from engine.bases.locate import base_for_finetuning  # noqa: PLC0415
    from engine.bases.registry import get_base  # noqa: PLC0415
    from engine.models.presets import build_transfer_model  # noqa: PLC0415

    start_layer = ctx.cfg.finetune_from or get_base(ctx.cfg.base).finetune_from
    base = base_for_finetuning(model, ctx.cfg.base, start_layer).model
    heads = [layer for layer in model.layers if layer.name == "head"]
    if not heads:
        raise InvalidSetting(f"the model of run '{ctx.cfg.head_from_run}' has no layer named 'head'",
                             "give a features-augmented run trained by ConvScope")
    pooling = str(source_config.get("head_pooling", ctx.cfg.head_pooling))
    return build_transfer_model(base, heads[0], pooling, augmentation=_augmentation(ctx), name=model.name)
