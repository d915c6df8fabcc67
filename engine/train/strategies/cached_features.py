"""Strategy ``features``: the frozen base runs once over train/validation/test, its (pooled or
flattened) features are cached on disk (:mod:`engine.train.features`), and a dense head is trained
on them, reading the cache files a batch of rows at a time. The saved best/last models are the FULL
model (base + pooling + head), so prediction and Grad-CAM take raw images; training resumes from
``head_last.keras`` (optimizer state included).
"""

from __future__ import annotations

import math
import time
from typing import Any

from engine.events import CheckpointSaved, Status
from engine.train import fitting
from engine.train.context import RunContext
from engine.train.strategies.transfer import build_base


def train(ctx: RunContext) -> None:
    from engine.data.pipeline import make_dataset  # noqa: PLC0415
    from engine.models.presets import build_feature_extractor, build_head, feature_dim  # noqa: PLC0415
    from engine.train import features as cache  # noqa: PLC0415

    cfg = ctx.cfg
    with ctx.scope.scope():
        spec, base = build_base(ctx)
        extractor = build_feature_extractor(base, cfg.head_pooling)
    head_holder: dict[str, Any] = {}

    def finalize() -> None:
        assemble_full_models(ctx, base, head_holder.get("head"))

    ctx.finalize = finalize
    weights = cache.weights_identity(spec)
    fingerprint = str(ctx.split.meta.get("fingerprint", ""))
    rows = {}
    for subset in ("test", "train", "validation"):  # test first: it is cached for later runs, never read here
        items = ctx.split.subset(subset)
        if not items:
            continue
        key = cache.cache_key(base=spec.name, weights=weights, image_size=ctx.size, pooling=cfg.head_pooling,
                              items=items, fingerprint=fingerprint)

        def compute(path, items=items, subset=subset):
            ds = make_dataset(items, ctx.size, cache.EXTRACT_BATCH, num_classes=ctx.num_classes, shuffle=False,
                              cache=None)
            batches = math.ceil(len(items) / cache.EXTRACT_BATCH)
            ctx.emit(Status(f"extracting {subset} features of {len(items)} images with {spec.name}"))
            started = time.perf_counter()
            labels = cache.extract_to(path, extractor, ds, batches, len(items), emit=ctx.emit, cancel=ctx.cancel,
                             subset=subset)
            ctx.emit(Status(f"{subset} features: {len(items)} × {tuple(extractor.output.shape[1:])} "
                            f"in {time.perf_counter() - started:.1f} s"))
            return labels

        path, labels, reused = cache.cached_features(key=key, subset=subset, compute=compute, emit=ctx.emit)
        if subset != "test":  # the head never sees the test split
            rows[subset] = cache.FeatureRows(cache.FeatureFile(path), labels)
        ctx.run.state.setdefault("feature_cache", {})[subset] = {"key": key, "reused": reused}
    ctx.run.save()

    train_rows, val_rows = rows.pop("train"), rows.pop("validation")
    train_ds = cache.training_dataset(train_rows, ctx.batch_size, shuffle=True, seed=cfg.seed)
    val_ds = cache.training_dataset(val_rows, ctx.batch_size)

    head_last = ctx.run_dir / "head_last.keras"
    with ctx.scope.scope():
        if ctx.resuming and head_last.exists() and ctx.run.epochs_done > 0:
            ctx.emit(Status(f"resuming after epoch {ctx.run.epochs_done} from {head_last.name}"))
            head = fitting.load_keras(head_last)
        else:
            head = build_head(feature_dim(base, cfg.head_pooling), ctx.num_classes)
            fitting.compile_for(ctx, head, cfg.learning_rate, fitting.HEAD_STEPS_PER_EXECUTION,
                                optimizer=cfg.optimizer, epochs=cfg.epochs)
    head_holder["head"] = head
    try:
        fitting.fit(ctx, head, train_ds, val_ds, end_epoch=cfg.epochs, total_epochs=cfg.epochs, phase="train",
                    save=fitting.checkpointer(ctx, head, prefix="head_"))
    finally:
        train_rows.release()
        val_rows.release()


def assemble_full_models(ctx: RunContext, base, head) -> None:
    """Write best.keras / last.keras as base + pooling + head (from head_best / head_last)."""
    from engine.models.presets import build_head, build_transfer_model, feature_dim  # noqa: PLC0415

    for kind in ("best", "last"):
        head_file = ctx.run_dir / f"head_{kind}.keras"
        with ctx.scope.scope():
            if head_file.exists():
                part = fitting.load_keras(head_file)
            elif kind == "last":
                part = head if head is not None else build_head(feature_dim(base, ctx.cfg.head_pooling),
                                                                ctx.num_classes)
            else:
                continue
            # Saved uncompiled: it is for prediction, evaluation and inspection; training resumes
            # from head_last.keras, which keeps the optimizer state.
            full = build_transfer_model(base, part, ctx.cfg.head_pooling, name=f"{base.name}_classifier")
        path = fitting.save_model(full, ctx.run_dir / f"{kind}.keras")
        epoch = int(ctx.run.state.get("best_epoch", ctx.run.epochs_done)) if kind == "best" else ctx.run.epochs_done
        ctx.emit(CheckpointSaved(path=path, epoch=epoch, best=kind == "best"))
