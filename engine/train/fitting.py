"""The training steps every strategy shares: datasets, compile, fit with the engine's callback,
atomic checkpoints, resume from ``last.keras``, the memory warning.

A strategy (:mod:`engine.train.strategies`) composes these on the :class:`RunContext` the life
cycle (:mod:`engine.train.lifecycle`) hands it. Early stopping and "best" both watch
:data:`MONITOR`; :func:`fit` raises :class:`~engine.events.JobCancelled` when the cancel token
stopped it, after the callback recorded only finished epochs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from engine import atomic
from engine.errors import InvalidSetting
from engine.events import CheckpointSaved, JobCancelled, Status
from engine.memory import available_memory as _available_memory  # patched by tests
from engine.tf_runtime import keras
from engine.train import rundir
from engine.train.callbacks import make_engine_callback
from engine.train.context import RunContext

MONITOR = "val_loss"


def datasets(ctx: RunContext):
    """The (train, validation) tf.data datasets of the run's split at its image size."""
    from engine.data.pipeline import make_dataset, suggest_cache  # noqa: PLC0415

    cfg = ctx.cfg
    out = []
    replicas = int(getattr(ctx.scope, "num_replicas_in_sync", 1))
    for subset, shuffle in (("train", True), ("validation", False)):
        items = ctx.split.subset(subset)
        cache = suggest_cache(len(items), ctx.size, ctx.run_dir / "cache" / subset)
        batch_size, left_out = replica_batches(len(items), ctx.batch_size, replicas, subset)
        if left_out:
            ctx.warn(f"the last {left_out} {subset} image(s) of each epoch are left out: {replicas} replicas "
                     f"train on whole batches of {batch_size} (a batch size that divides the {len(items)} "
                     "images uses them all)")
        out.append(make_dataset(items, ctx.size, batch_size, num_classes=ctx.num_classes, shuffle=shuffle,
                                seed=cfg.seed, cache=cache, drop_remainder=replicas > 1, emit=ctx.emit))
    return out[0], out[1]


def replica_batches(count: int, batch_size: int, replicas: int, subset: str = "train") -> tuple[int, int]:
    """``(batch size, images left out per epoch)`` for ``count`` images shared by ``replicas``.

    With several replicas (MirroredStrategy, a cluster) every batch is whole: tf.distribute cuts a
    batch whose size it cannot know in advance (a last, partial one) into parts of
    ceil(size / replicas) in order, which can leave a replica an empty part — and TensorFlow's CPU
    convolution fails on an empty batch ("input depth must be evenly divisible by filter depth").
    A subset smaller than one batch gets the largest whole batch it holds."""
    if replicas <= 1:
        return batch_size, 0
    batch = min(batch_size, count // replicas * replicas)
    if batch < replicas:
        raise InvalidSetting(f"{count} {subset} image(s) in batches of {batch_size} cannot be shared by "
                             f"{replicas} replicas", f"use a batch size of at least {replicas} and at least "
                             f"{replicas} {subset} images")
    return batch, count % batch


def save_model(model, path: Path) -> str:
    """Save ``model`` atomically to ``path``; returns the path."""
    atomic.save_with(path, model.save, suffix=".keras")
    return str(path)


def checkpointer(ctx: RunContext, model, prefix: str = "") -> Callable[..., str]:
    """The callback's ``save(kind, epoch, same_as=None)``: writes ``<prefix><kind>.keras`` in the run
    folder; ``same_as``, a checkpoint of this very epoch, is copied byte for byte instead (serializing
    the model a second time costs as much as the first)."""
    def save(kind: str, epoch: int, same_as: str | None = None) -> str:
        target = ctx.run_dir / f"{prefix}{kind}.keras"
        if same_as:
            atomic.copy_file(same_as, target)
            return str(target)
        return save_model(model, target)

    return save


def load_keras(path: Path):
    """Load a run's own checkpoint (optimizer state included) through the safe loader, which
    also registers ConvScope's augmentation layer before Keras deserializes it."""
    from engine.models.loading import load_keras_file  # noqa: PLC0415

    return load_keras_file(path, compile=True)


def augmentation(ctx: RunContext):
    """The run's augmentation block (a Sequential named "augmentation"), or None when off."""
    if not ctx.cfg.augment:
        return None
    from engine.data.augment import build_augmentation  # noqa: PLC0415

    return build_augmentation(ctx.cfg.augmentation, seed=ctx.cfg.seed)


# A dense head on cached features takes about a millisecond per batch, less than Keras's own
# per-step overhead: running this many batches per compiled call makes a head epoch several times
# faster (bench/bench_training.py). Cancel then acts within one such group (milliseconds).
HEAD_STEPS_PER_EXECUTION = 16


def compile_for(ctx: RunContext, model, learning_rate: float, steps_per_execution: int = 1, *,
                optimizer: str = "rmsprop", epochs: int = 1) -> None:
    """Compile with the loss and metrics for the run's number of classes; ``optimizer`` (the book's
    RMSprop unless told) with a schedule, if it has one, over ``epochs`` epochs of the run's batches."""
    from engine.models.presets import compile_model  # noqa: PLC0415

    replicas = int(getattr(ctx.scope, "num_replicas_in_sync", 1))
    count = len(ctx.split.subset("train"))
    batch_size, _ = replica_batches(count, ctx.batch_size, replicas)
    steps = count // batch_size if replicas > 1 else -(-count // batch_size)
    compile_model(model, ctx.num_classes, float(learning_rate), steps_per_execution, optimizer=optimizer,
                  steps_per_epoch=steps, epochs=epochs)


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


def check_memory(ctx: RunContext, model) -> None:
    """Warn (never refuse) when one training step may not fit in the memory available now."""
    need = estimate_training_bytes(model, ctx.batch_size)
    have = _available_memory()
    if have and need > 0.8 * have:
        ctx.warn(f"training may run out of memory: about {need / 2**30:.1f} GiB needed for batch size "
                 f"{ctx.batch_size} at {ctx.size} px, {have / 2**30:.1f} GiB available — "
                 "lower the batch size or the image size")


def _tensorboard_available(ctx: RunContext) -> bool:
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("tensorboard") is not None:
        return True
    if not ctx.run.state.get("tensorboard_warned"):
        ctx.run.state["tensorboard_warned"] = True
        ctx.warn("TensorBoard logs are not written: the tensorboard package is not installed")
    return False


def fit(ctx: RunContext, model, train_ds, val_ds, *, end_epoch: int, total_epochs: int, phase: str,
        save: Callable[[str, int], str]) -> None:
    """Train from the run's next epoch to ``end_epoch`` (continuing its numbering), with the engine's
    callback, early stopping and TensorBoard as configured. JobCancelled when cancel stopped it."""
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


def ensure_last(ctx: RunContext, model) -> None:
    """A cancelled or crashed run always leaves a loadable last.keras."""
    last = ctx.run_dir / rundir.LAST
    if not last.exists():
        path = save_model(model, last)
        ctx.emit(CheckpointSaved(path=path, epoch=ctx.run.epochs_done, best=False))


def build_or_resume(ctx: RunContext, build: Callable[[], Any]):
    """``(model, resumed)``: last.keras of a resumed run that finished an epoch, else ``build()``."""
    last = ctx.run_dir / rundir.LAST
    with ctx.scope.scope():
        if ctx.resuming and last.exists() and ctx.run.epochs_done > 0:
            ctx.emit(Status(f"resuming after epoch {ctx.run.epochs_done} from {last.name}"))
            return load_keras(last), True
        return build(), False
