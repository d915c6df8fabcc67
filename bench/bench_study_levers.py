"""The study's accuracy levers on a dataset: cached features of each EfficientNet-Lite base at its own
size, pooled (avg) or flattened, with and without test-time flip averaging.

    PYTHONPATH=. .venv/bin/python bench/bench_study_levers.py --data resources/demo/pullover-vs-coat \
        --bases efficientnet-lite0 efficientnet-lite1 efficientnet-lite2 --out levers.json

For each base: one pass of the frozen base over train, validation and test (and the flipped
validation and test images), then the study's dense head (engine.models.presets.build_head, RMSprop
1e-3, early stopping on validation loss with patience 5, the best validation-loss epoch kept) on the
avg-pooled and the flattened feature map. Every choice is read off the VALIDATION column; the test
column is reported beside it. Prints one JSON row per setting with wall times and the load average.
The fine-tune recipes are measured with the engine's own runs (see docs/study.md).
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


def _split(data: str):
    from engine.events import discard
    from engine.train.config import TrainConfig
    from engine.train.lifecycle import prepare_split

    split, _ = prepare_split(TrainConfig(data=data), discard, None)
    return split


def _extract(spec, split, size: int):
    """{subset: (avg features, flattened float16 features, labels)}, flipped val/test included."""
    import tensorflow as tf

    from engine.data.pipeline import make_dataset

    base = spec.build(include_top=False, input_size=size)
    base.trainable = False
    step = tf.function(lambda x: base(x, training=False))
    out = {}
    for subset in ("train", "validation", "test"):
        items = split.subset(subset)
        for flipped in ((False, True) if subset != "train" else (False,)):
            ds = make_dataset(items, size, 50, num_classes=len(split.classes), shuffle=False)
            avg, flat, labels = [], [], []
            for images, y in ds:
                if flipped:
                    images = tf.image.flip_left_right(images)
                maps = step(images).numpy()
                avg.append(maps.mean(axis=(1, 2)))
                flat.append(maps.reshape(len(maps), -1).astype(np.float16))
                labels.append(y.numpy())
            out[subset + ("-flipped" if flipped else "")] = (np.concatenate(avg), np.concatenate(flat),
                                                             np.concatenate(labels))
    return out


def _head_accuracies(features, which: int, seed: int = 0):
    """(val, test, val with flip averaged, test with flip averaged, epochs) of the study's head."""
    import keras

    from engine.models.presets import build_head, compile_model

    keras.utils.set_random_seed(seed)
    x_train, y_train = features["train"][which].astype(np.float32), features["train"][2]
    head = build_head(x_train.shape[1], 2)
    compile_model(head, 2, 1e-3, steps_per_execution=16)
    x_val, y_val = features["validation"][which].astype(np.float32), features["validation"][2]
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    history = head.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=30, batch_size=32,
                       callbacks=[stop], verbose=0)
    result = []
    for subset in ("validation", "test"):
        y = features[subset][2].reshape(-1)
        plain = head.predict(features[subset][which].astype(np.float32), verbose=0).reshape(-1)
        flipped = head.predict(features[subset + "-flipped"][which].astype(np.float32), verbose=0).reshape(-1)
        result.append((float(np.mean((plain > 0.5) == y)), float(np.mean(((plain + flipped) / 2 > 0.5) == y))))
    (val, val_tta), (test, test_tta) = result
    return val, test, val_tta, test_tta, len(history.history["loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="resources/demo/pullover-vs-coat")
    parser.add_argument("--bases", nargs="+", default=["efficientnet-lite0", "efficientnet-lite1",
                                                       "efficientnet-lite2"])
    parser.add_argument("--out", default=None, help="append the JSON rows to this file")
    args = parser.parse_args()
    from engine.bases.registry import get_base

    split = _split(args.data)
    rows = []
    for name in args.bases:
        spec = get_base(name)
        started = time.perf_counter()
        load_before = load()
        features = _extract(spec, split, spec.input_size)
        extract_s = time.perf_counter() - started
        for which, pooling in ((0, "avg"), (1, "flatten")):
            t0 = time.perf_counter()
            val, test, val_tta, test_tta, epochs = _head_accuracies(features, which)
            row = {"setting": f"features {name} {spec.input_size} px {pooling}", "val": val, "test": test,
                   "val_tta": val_tta, "test_tta": test_tta, "head_epochs": epochs,
                   "extract_s (6,000 images incl. flipped val/test)": round(extract_s, 1),
                   "head_s": round(time.perf_counter() - t0, 1), "load": f"{load_before} -> {load()}"}
            rows.append(row)
            print(json.dumps(row), flush=True)
        del features
    if args.out:
        append_json_rows(args.out, rows)


if __name__ == "__main__":
    main()
