"""The frozen pretrained base and the transfer model the three base strategies start from."""

from __future__ import annotations

from engine.events import Status
from engine.train import fitting
from engine.train.context import RunContext


def build_base(ctx: RunContext):
    """The registry's base for ``ctx.cfg.base`` at the run's image size, frozen. A base without
    weights here is used from random weights, with a warning that says so."""
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


def new_transfer_model(ctx: RunContext, learning_rate: float, optimizer: str | None = None):
    """image → [augmentation] → frozen base → pooling → new dense head, compiled. Returns (spec, model)."""
    from engine.models.presets import build_head, build_transfer_model, feature_dim  # noqa: PLC0415

    spec, base = build_base(ctx)
    head = build_head(feature_dim(base, ctx.cfg.head_pooling), ctx.num_classes)
    model = build_transfer_model(base, head, ctx.cfg.head_pooling, augmentation=fitting.augmentation(ctx),
                                 name=f"{base.name}_classifier")
    fitting.compile_for(ctx, model, learning_rate, optimizer=optimizer or ctx.cfg.optimizer,
                        epochs=ctx.cfg.epochs)
    return spec, model
