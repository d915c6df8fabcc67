"""Strategy ``finetune``: phase "head" trains a new head on the frozen base (or reuses the model of a
finished features-augmented run, ``head_from_run``); phase "finetune" unfreezes the base from
``finetune_from`` (default: the registry's) at a low learning rate. BatchNorm layers stay frozen and
in inference mode. Epoch numbers continue across phases; events carry the phase. The base is found
in the model by what it is (:mod:`engine.bases.locate`), never as the first nested model.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import InvalidSetting
from engine.events import Status
from engine.tf_runtime import keras
from engine.train import fitting, rundir
from engine.train.context import RunContext
from engine.train.strategies.transfer import new_transfer_model


def planned_epochs(cfg) -> int:
    """Head phase + fine-tuning phase; a head reused from another run has no head phase."""
    return int(cfg.epochs) + (0 if cfg.head_from_run else int(cfg.head_epochs or 0))


def first_phase(cfg, state: dict) -> str:
    return "finetune" if state.get("phase1_done") or cfg.head_from_run else "head"


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


def train(ctx: RunContext) -> None:
    from engine.bases.locate import base_for_finetuning  # noqa: PLC0415
    from engine.bases.registry import get_base  # noqa: PLC0415

    cfg = ctx.cfg
    state = ctx.run.state
    start_layer = cfg.finetune_from or get_base(cfg.base).finetune_from
    phase2_started = any(row.get("phase") == "finetune" for row in ctx.run.rows)

    def build():
        if cfg.head_from_run:
            return model_from_run(ctx, Path(cfg.head_from_run))
        return new_transfer_model(ctx, cfg.head_learning_rate, optimizer="rmsprop")[1]

    model, resumed = fitting.build_or_resume(ctx, build)
    if cfg.head_from_run and not resumed and not state.get("phase1_done"):
        state.update(phase1_done=True, phase1_epochs=0)
        ctx.run.save()
    base = base_for_finetuning(model, cfg.base, start_layer).model
    ctx.finalize = lambda: fitting.ensure_last(ctx, model)
    fitting.check_memory(ctx, model)
    train_ds, val_ds = fitting.datasets(ctx)
    head_epochs = int(cfg.head_epochs or cfg.epochs)
    if not state.get("phase1_done"):
        fitting.fit(ctx, model, train_ds, val_ds, end_epoch=head_epochs, total_epochs=head_epochs + cfg.epochs,
             phase="head", save=fitting.checkpointer(ctx, model))
        state.update(phase1_done=True, phase1_epochs=ctx.run.epochs_done)
        ctx.run.save()
    phase1_epochs = int(state.get("phase1_epochs", 0))
    end = phase1_epochs + cfg.epochs
    state["epochs_planned"] = end
    with ctx.scope.scope():
        if not (resumed and phase2_started):
            trainable = unfreeze_from(base, start_layer)
            ctx.emit(Status(f"fine-tuning {base.name} from {start_layer}: {trainable} trainable weight "
                            f"tensors, {cfg.optimizer} at learning rate {cfg.learning_rate:g}"))
            fitting.compile_for(ctx, model, cfg.learning_rate, optimizer=cfg.optimizer, epochs=cfg.epochs)
    fitting.fit(ctx, model, train_ds, val_ds, end_epoch=end, total_epochs=end, phase="finetune",
         save=fitting.checkpointer(ctx, model))


def model_from_run(ctx: RunContext, source: Path):
    info = rundir.read_config(source)
    if info.get("strategy") not in ("features-augmented", "finetune"):
        raise InvalidSetting(f"run '{source}' used the {info.get('strategy')} strategy",
                             "give a features-augmented run (its model contains the base)")
    if int(info.get("image_size", -1)) != ctx.size or list(info.get("classes", [])) != ctx.classes:
        raise InvalidSetting(f"run '{source}' has other classes or image size than this run",
                             f"use image size {info.get('image_size')} and the same data")
    path = rundir.best_or_last(source)
    ctx.emit(Status(f"reusing the trained head of {path}"))
    return _with_this_runs_augmentation(ctx, fitting.load_keras(path), info)


def _with_this_runs_augmentation(ctx: RunContext, model, source_config: dict):
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
    return build_transfer_model(base, heads[0], pooling, augmentation=fitting.augmentation(ctx), name=model.name)
