"""Benchmarks of engine.inspect; writes docs/benchmarks_inspect.md.

Every figure is a ratio against a baseline measured in the same run on the same machine:
1. filter patterns per second vs the book's one-filter eager loop (VGG16 block3_conv1, 40 steps,
   150 px; VGG16 with random weights: the speed does not depend on the weights);
2. Grad-CAM latency vs plain prediction latency (VGG16 conv base + softmax head, 224 px);
3. activations of all conv layers in one pass vs one model per layer;
4. RSS after 50 and after 500 Grad-CAM calls in one process.

Run: ``.venv/bin/python bench/bench_inspect.py [--quick]``. Takes about 4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import atomic  # noqa: E402
from engine.tf_runtime import keras, tf  # noqa: E402


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource  # noqa: PLC0415

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def book_eager_filter(feature_model, filter_index: int, size: int, steps: int, seed: int = 0):
    """The book's loop (DLwP 5.4.2) in Keras 3: eager GradientTape, one filter, one step at a time."""
    t = tf()
    rng = np.random.default_rng([seed, filter_index])
    image = t.Variable((rng.random((1, size, size, 3)) * 20 + 128).astype("float32"))
    for _ in range(steps):
        with t.GradientTape() as tape:
            loss = t.reduce_mean(feature_model(image)[:, :, :, filter_index])
        grads = tape.gradient(loss, image)
        grads /= t.sqrt(t.reduce_mean(t.square(grads))) + 1e-5
        image.assign_add(grads * 1.0)
    return image.numpy()[0]


def timed(fn, repeat=1):
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - start) / repeat, out


def correlation(a, b) -> float:
    a = (a - a.mean()).ravel()
    b = (b - b.mean()).ravel()
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def bench_filters(quick: bool) -> tuple[list[str], dict]:
    from engine.inspect.filters import FilterConfig, generate_patterns

    k = keras()
    size, steps, layer = 150, (10 if quick else 40), "block3_conv1"
    vgg = k.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    feature = k.Model(vgg.inputs[0], vgg.get_layer(layer).output)
    book_eager_filter(feature, 0, size, 1)  # warm-up
    n_book = 1
    t_book, book_image = timed(lambda: book_eager_filter(feature, 0, size, steps))
    rows = []
    results = {}
    plans = [
        ("compiled, 1 filter at a time, float32", dict(count=2, batch_size=1, precision="float32")),
        ("compiled, batch of 8, float32", dict(count=8, batch_size=8, precision="float32")),
        ("compiled, batch of 8, bfloat16", dict(count=8, batch_size=8, precision="bfloat16")),
        ("compiled, batch of 32, bfloat16", dict(count=32, batch_size=32, precision="bfloat16")),
    ]
    for label, plan in plans:
        config = FilterConfig(layer=layer, steps=steps, image_size=size, **plan)
        generate_patterns(vgg, FilterConfig(layer=layer, steps=1, image_size=size,
                                            count=plan["batch_size"], batch_size=plan["batch_size"],
                                            precision=plan["precision"]))  # trace + warm-up
        seconds, result = timed(lambda c=config: generate_patterns(vgg, c))
        per_filter = seconds / plan["count"]
        results[label] = result
        rows.append((label, plan["count"], per_filter, t_book / per_filter))
    f32, bf16 = results["compiled, batch of 8, float32"], results["compiled, batch of 8, bfloat16"]
    corr = [correlation(a, b) for a, b in zip(f32.images, bf16.images)]
    same_as_book = correlation(results["compiled, 1 filter at a time, float32"].images[0], book_image)
    lines = [
        f"### 1. Filter patterns — VGG16 `{layer}`, {steps} steps, {size} px (random weights)",
        "",
        "| method | filters | s / filter | speed-up vs book loop |",
        "|---|---:|---:|---:|",
        f"| book's eager loop (GradientTape, one filter) | {n_book} | {t_book:.2f} | 1.0× |",
    ]
    lines += [f"| {label} | {n} | {s:.3f} | {r:.1f}× |" for label, n, s, r in rows]
    lines += [
        "",
        f"bfloat16 vs float32 patterns (same filters, same start noise): correlation of the optimised images "
        f"min {min(corr):.4f}, mean {np.mean(corr):.4f}. Compiled float32 filter 0 vs the book loop: "
        f"correlation {same_as_book:.5f}.",
        "",
    ]
    return lines, {"book": t_book, "rows": rows}


def bench_gradcam(quick: bool) -> list[str]:
    from engine.inspect.cam import compute_cam

    k = keras()
    k.utils.set_random_seed(0)
    size = 224
    vgg = k.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    x = k.layers.GlobalAveragePooling2D()(vgg.output)
    model = k.Model(vgg.inputs[0], k.layers.Dense(1000, activation="softmax")(x))
    image = np.random.default_rng(0).uniform(0, 255, (size, size, 3)).astype("float32")
    batch = tf().constant(image[None])
    forward = tf().function(lambda b: model(b, training=False))
    reps = 5 if quick else 15
    forward(batch)
    model.predict(batch, verbose=0)
    compute_cam(model, image, class_index=3)
    t_forward, _ = timed(lambda: forward(batch).numpy(), reps)
    t_predict, _ = timed(lambda: model.predict(batch, verbose=0), reps)
    t_cam, _ = timed(lambda: compute_cam(model, image, class_index=3), reps)
    t_eager, _ = timed(lambda: _eager_gradcam(model, batch), 3)
    return [
        "### 2. Grad-CAM latency — VGG16 conv base + softmax head, 224 px, one image",
        "",
        "| call | ms | ratio to compiled forward |",
        "|---|---:|---:|",
        f"| compiled forward pass (`tf.function(model)`) | {t_forward * 1e3:.0f} | 1.00 |",
        f"| `model.predict` | {t_predict * 1e3:.0f} | {t_predict / t_forward:.2f} |",
        f"| `compute_cam` (Grad-CAM, compiled, cached trace) | {t_cam * 1e3:.0f} | **{t_cam / t_forward:.2f}** |",
        f"| eager Grad-CAM (GradientTape, no tf.function) | {t_eager * 1e3:.0f} | {t_eager / t_forward:.2f} |",
        "",
        f"Grad-CAM / `model.predict`: {t_cam / t_predict:.2f}.",
        "",
    ]


def _eager_gradcam(model, batch):
    t = tf()
    k = keras()
    conv = model.get_layer("block5_conv3")
    grad_model = k.Model(model.inputs[0], [conv.output, model.output])
    with t.GradientTape() as tape:
        acts, preds = grad_model(batch)
        score = preds[:, 3]
    grads = tape.gradient(score, acts)
    weights = t.reduce_mean(grads, axis=(0, 1, 2))
    return t.nn.relu(t.reduce_sum(acts[0] * weights, -1)).numpy()


def bench_activations(quick: bool) -> list[str]:
    from engine.inspect.activations import compute_activations

    k = keras()
    size = 224
    vgg = k.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    convs = [layer.name for layer in vgg.layers if isinstance(layer, k.layers.Conv2D)]
    image = np.random.default_rng(1).uniform(0, 255, (size, size, 3)).astype("float32")
    per_layer_models = [k.Model(vgg.inputs[0], vgg.get_layer(name).output) for name in convs]
    reps = 2 if quick else 4
    compute_activations(vgg, image, convs)
    for m in per_layer_models:
        m.predict(image[None], verbose=0)
    t_one, _ = timed(lambda: compute_activations(vgg, image, convs), reps)
    t_many, _ = timed(lambda: [m.predict(image[None], verbose=0) for m in per_layer_models], reps)
    return [
        f"### 3. Activations of all {len(convs)} conv layers of VGG16, 224 px",
        "",
        "| method | ms | ratio |",
        "|---|---:|---:|",
        f"| one model per layer (`Model(inputs, layer.output).predict`, the book's way) | {t_many * 1e3:.0f} | 1.0 |",
        f"| `compute_activations`: one compiled pass for all layers | {t_one * 1e3:.0f} | **{t_many / t_one:.1f}× faster** |",
        "",
    ]


def bench_memory(quick: bool) -> list[str]:
    from engine.inspect.cam import compute_cam

    k = keras()
    k.utils.set_random_seed(0)
    size = 150
    base = k.Sequential(
        [k.Input((size, size, 3)), k.layers.Rescaling(1 / 255.0),
         k.layers.Conv2D(32, 3, activation="relu"), k.layers.MaxPooling2D(),
         k.layers.Conv2D(64, 3, activation="relu"), k.layers.MaxPooling2D(),
         k.layers.Conv2D(128, 3, activation="relu"), k.layers.MaxPooling2D(),
         k.layers.Conv2D(128, 3, activation="relu", name="last_conv")],
        name="conv_base",
    )
    model = k.Sequential([k.Input((size, size, 3)), base, k.layers.Flatten(), k.layers.Dense(1, activation="sigmoid")])
    rng = np.random.default_rng(2)
    images = [rng.uniform(0, 255, (size, size, 3)).astype("float32") for _ in range(8)]
    total = 100 if quick else 500
    marks = {}
    start = time.perf_counter()
    for i in range(1, total + 1):
        compute_cam(model, images[i % 8], class_index=i % 2)
        if i in (50, total):
            marks[i] = rss_mb()
    seconds = time.perf_counter() - start
    growth = (marks[total] - marks[50]) / marks[50]
    return [
        f"### 4. Memory — {total} Grad-CAM calls in one process (the book's shape: conv base nested in a "
        f"Sequential, sigmoid head, 150 px; alternating classes, 8 images)",
        "",
        "| after call | RSS (MB) |",
        "|---:|---:|",
        f"| 50 | {marks[50]:.0f} |",
        f"| {total} | {marks[total]:.0f} |",
        "",
        f"Growth from call 50 to call {total}: **{growth:+.1%}** (goal: under 10%); "
        f"{seconds / total * 1e3:.1f} ms per call.",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and calls (a smoke run)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks_inspect.md"))
    args = parser.parse_args()
    began = time.perf_counter()
    sections = []
    for bench in (bench_filters, bench_gradcam, bench_activations, bench_memory):
        t0 = time.perf_counter()
        result = bench(args.quick)
        lines = result[0] if isinstance(result, tuple) else result
        sections += lines
        print(f"{bench.__name__}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    header = [
        "# Benchmarks: looking inside (engine.inspect)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"TensorFlow {tf().__version__}, Keras {keras().__version__}. "
        f"Run with `bench/bench_inspect.py{' --quick' if args.quick else ''}` "
        f"({time.perf_counter() - began:.0f} s in all). Each ratio compares with a baseline measured in the same run.",
        "",
    ]
    atomic.write_text(args.out, "\n".join(header + sections))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
