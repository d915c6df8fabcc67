"""Strategy ``scratch``: a preset (book-scratch, mini-xception) trained from random weights.

Augmentation, when on, is a block inside the model, active only in training.
"""

from __future__ import annotations

from engine.train import fitting
from engine.train.context import RunContext


def train(ctx: RunContext) -> None:
    from engine.models.presets import build_preset  # noqa: PLC0415

    cfg = ctx.cfg

    def build():
        model = build_preset(cfg.preset, ctx.size, ctx.num_classes, augmentation=fitting.augmentation(ctx))
        fitting.compile_for(ctx, model, cfg.learning_rate, optimizer=cfg.optimizer, epochs=cfg.epochs)
        return model

    model, _ = fitting.build_or_resume(ctx, build)
    ctx.finalize = lambda: fitting.ensure_last(ctx, model)
    fitting.check_memory(ctx, model)
    train_ds, val_ds = fitting.datasets(ctx)
    fitting.fit(ctx, model, train_ds, val_ds, end_epoch=cfg.epochs, total_epochs=cfg.epochs, phase="train",
                save=fitting.checkpointer(ctx, model))
