"""The study's fine-tuning levers on a dataset: optimizer and its peak rate, depth, base, label smoothing, seed.

    PYTHONPATH=. .venv/bin/python bench/bench_finetune_levers.py --data resources/demo/pullover-vs-coat \
        --start /tmp/study/rungs/4-features-augmented --cut block6a_expand_conv \
        --optimizer adam-cosine --learning-rate 1e-4 --epochs 10 --out levers.jsonl

What it measures fast: below ``--cut`` every layer of the base stays frozen, BatchNorm in inference
mode, so its output for an image never changes during fine-tuning. The frozen bottom therefore runs
ONCE per training image and once per mirror image (and once per validation and test image), and the
epochs train only the top of the base and the head on those cached activations, each training image
in a random orientation per epoch. That is the study's rung 5 with flip-only augmentation (the
study's mild augmentation also shifts by up to 10 %; not reproduced here) at a fraction of its cost,
so many recipes can be compared on the same split. The engine's own run is the check of a chosen
recipe (docs/study.md).

``--start``: a features-augmented run (a study's rung 4): its trained base and head are the start,
as in the study. Without it: the base's ImageNet weights and a new head (the study's Dense 256 +
Dropout 0.5, RMSprop 1e-3, early stopping on validation loss) trained first on the pooled features
of the cached activations (train and mirror images).

Each epoch prints one JSON row (train, validation and test accuracy and loss); the last row is the
epoch with the lowest validation loss — every choice is read off validation, test is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import append_json_rows, load  # noqa: E402
from engine.models.presets import OPTIMIZERS, make_optimizer  # noqa: E402 (no TensorFlow until called)


def _split(data: str):
    from engine.events import discard
    from engine.train.config import TrainConfig
    from engine.train.lifecycle import prepare_split

    split, _ = prepare_split(TrainConfig(data=data), discard, None)
    return split


def _start_model(args):
    """(base, head or None): rung 4's trained base and head, or the registry base and no head yet."""
    from engine.bases.locate import base_for_finetuning
    from engine.bases.registry import get_base

    if not args.start:
        return get_base(args.base).build(include_top=False), None
    from engine.train import rundir
    from engine.train.fitting import load_keras

    model = load_keras(rundir.best_or_last(Path(args.start)))
    base = base_for_finetuning(model, args.base, args.cut).model
    return base, next(layer for layer in model.layers if layer.name == "head")


def _bottom_activations(bottom, split, size: int, num_classes: int):
    """{subset: activations}, "train-mirror" included, and {subset: labels}: one pass of the frozen bottom."""
    import tensorflow as tf

    from engine.data.pipeline import make_dataset

    step = tf.function(lambda x: bottom(x, training=False))
    acts, labels = {}, {}
    for subset in ("train", "validation", "test"):
        ds = make_dataset(split.subset(subset), size, 32, num_classes=num_classes, shuffle=False)
        plain, mirrored, ys = [], [], []
        for images, y in ds:
            plain.append(step(images).numpy())
            if subset == "train":
                mirrored.append(step(tf.image.flip_left_right(images)).numpy())
            ys.append(y.numpy())
        acts[subset], labels[subset] = np.concatenate(plain), np.concatenate(ys).astype(np.float32)
        if mirrored:
            acts["train-mirror"] = np.concatenate(mirrored)
    return acts, labels


def _train_new_head(top_base, acts, labels, num_classes: int, seed: int):
    """The study's head on the pooled features of the (frozen) top: train and mirror images."""
    import keras
    import tensorflow as tf

    from engine.models.presets import build_head, compile_model

    pooled = tf.function(lambda x: tf.reduce_mean(top_base(x, training=False), axis=(1, 2)))
    feats = {s: np.concatenate([pooled(a[i:i + 64]).numpy() for i in range(0, len(a), 64)]) for s, a in acts.items()}
    keras.utils.set_random_seed(seed)
    head = build_head(feats["train"].shape[1], num_classes)
    compile_model(head, num_classes, 1e-3, steps_per_execution=16)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    head.fit(np.concatenate([feats["train"], feats["train-mirror"]]), np.concatenate([labels["train"]] * 2),
             validation_data=(feats["validation"], labels["validation"]), epochs=30, batch_size=32,
             callbacks=[stop], verbose=0)
    return head


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="resources/demo/pullover-vs-coat")
    parser.add_argument("--base", default="efficientnet-lite0")
    parser.add_argument("--start", default=None, help="a features-augmented run (a study's rung 4) to start from")
    parser.add_argument("--cut", default="block6a_expand_conv", help="the first trainable layer of the base")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="rmsprop",
                        help="as `convscope train --optimizer`: the engine's own optimizer and schedule")
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="append the JSON rows to this file")
    args = parser.parse_args()
    import keras

    split = _split(args.data)
    num_classes = len(split.classes)
    if num_classes != 2:
        raise SystemExit("this bench measures binary datasets (the study's demo data)")
    keras.utils.set_random_seed(args.seed)
    base, head = _start_model(args)
    size = int(base.input.shape[1])
    cut = base.get_layer(args.cut).input
    started, load_before = time.perf_counter(), load()
    acts, labels = _bottom_activations(keras.Model(base.input, cut), split, size, num_classes)
    cache_s = time.perf_counter() - started
    top_base = keras.Model(cut, base.output)
    for layer in top_base.layers:
        layer.trainable = False
    if head is None:
        head = _train_new_head(top_base, acts, labels, num_classes, args.seed)
    for layer in top_base.layers:  # the top unfrozen, BatchNorm excepted (as the study's rung 5)
        layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
    inputs = keras.Input(acts["train"].shape[1:])
    top = keras.Model(inputs, head(keras.layers.GlobalAveragePooling2D()(top_base(inputs, training=False))))
    count = len(acts["train"])
    top.compile(optimizer=make_optimizer(args.optimizer, args.learning_rate, count // 32, args.epochs),
                loss=keras.losses.BinaryCrossentropy(label_smoothing=args.label_smoothing), metrics=["accuracy"])
    setting = {k: v for k, v in vars(args).items() if k not in ("data", "out")}
    rows, rng = [], np.random.default_rng(args.seed)

    def scores(subset):
        loss, accuracy = top.evaluate(acts[subset], labels[subset], batch_size=128, verbose=0)
        return round(float(accuracy), 4), round(float(loss), 4)

    rows.append({**setting, "epoch": 0, "val": scores("validation"), "test": scores("test"),
                 "cache_s": round(cache_s, 1)})
    print(json.dumps(rows[-1]), flush=True)
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        mirror = rng.random(count) < 0.5
        x = np.where(mirror[:, None, None, None], acts["train-mirror"], acts["train"])
        history = top.fit(x, labels["train"], batch_size=32, epochs=1, shuffle=True, verbose=0).history
        rows.append({**setting, "epoch": epoch, "train": round(float(history["accuracy"][0]), 4),
                     "val": scores("validation"), "test": scores("test"),
                     "epoch_s": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
    best = min(rows[1:], key=lambda row: row["val"][1])
    rows.append({**setting, "best_val_loss_epoch": best["epoch"], "val": best["val"], "test": best["test"],
                 "load": f"{load_before} -> {load()}"})
    print(json.dumps(rows[-1]), flush=True)
    if args.out:
        append_json_rows(args.out, rows)


if __name__ == "__main__":
    main()
