"""Strategy ``features-augmented``: the frozen base inside the model, trained end to end with augmentation."""

from __future__ import annotations

from engine.train import fitting
from engine.train.context import RunContext
from engine.train.strategies.transfer import new_transfer_model


def train(ctx: RunContext) -> None:
    cfg = ctx.cfg
    model, _ = fitting.build_or_resume(ctx, lambda: new_transfer_model(ctx, cfg.learning_rate)[1])
    ctx.finalize = lambda: fitting.ensure_last(ctx, model)
    fitting.check_memory(ctx, model)
    train_ds, val_ds = fitting.datasets(ctx)
    fitting.fit(ctx, model, train_ds, val_ds, end_epoch=cfg.epochs, total_epochs=cfg.epochs, phase="train",
                save=fitting.checkpointer(ctx, model))
