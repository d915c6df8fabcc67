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


def book_compiled_filter(feature_model, size: int, steps: int):
    """The book's algorithm as the book runs it: one filter at a time, each step compiled (the book's
    ``K.function``; here ``tf.function`` of the same GradientTape step), the model truncated at the
    layer. Returns ``run(filter_index, seed)`` → the optimised image."""
    t = tf()

    @t.function(reduce_retracing=True)
    def step(image, filter_index):
        with t.GradientTape() as tape:
            tape.watch(image)
            loss = t.reduce_mean(t.gather(feature_model(image), filter_index, axis=3))
        grads = tape.gradient(loss, image)
        grads /= t.sqrt(t.reduce_mean(t.square(grads))) + 1e-5
        return image + grads * 1.0

    def run(filter_index: int, seed: int = 0):
        rng = np.random.default_rng([seed, filter_index])
        image = t.constant((rng.random((1, size, size, 3)) * 20 + 128).astype("float32"))
        index = t.constant(filter_index)
        for _ in range(steps):
            image = step(image, index)
        return image.numpy()[0]

    return run


def step_flops(feature_model) -> float:
    """Floating-point operations of one gradient-ascent step for one filter: the forward pass of the
    truncated model plus the gradient with respect to the input (about as many again: no weight
    gradients are needed). Convolutions only (2·H·W·k·k·Cin·Cout each); the rest is noise."""
    k = keras()
    forward = 0.0
    for layer in feature_model.layers:
        if isinstance(layer, k.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw, c_in, _ = layer.kernel.shape
            forward += 2.0 * h * w * kh * kw * c_in * c_out
    return 2.0 * forward


def matmul_peak_gflops(seconds: float = 3.0) -> float:
    """This machine's float32 matrix-multiply rate (GFLOP/s) with TensorFlow on all cores: the best of
    repeated 2048×2048 products, a practical ceiling for convolutions on a CPU."""
    t = tf()
    n = 2048
    a = t.random.normal((n, n))
    b = t.random.normal((n, n))
    product = t.function(lambda x, y: t.reduce_sum(t.matmul(x, y)))
    product(a, b)
    best, until = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < until:
        start = time.perf_counter()
        float(product(a, b))
        best = max(best, 2.0 * n ** 3 / (time.perf_counter() - start) / 1e9)
    return best


def timed(fn, repeat=1):
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - start) / repeat, out


def correlation(a, b) -> float:
    a = (a - a.mean()).ravel()
    b = (b - b.mean()).ravel()
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _step_breakdown(vgg, layer, size, batch, precision, reps):
    """Per step of a batch: compiled forward only, compiled forward+backward+update, and what
    generate_patterns adds on top (Python loop, events, start noise, deprocess)."""
    from engine.inspect.filters import FilterConfig, _compiled, generate_patterns

    t = tf()
    ascent_step, measure = _compiled(vgg, layer, precision, size, 3)
    rng = np.random.default_rng(0)
    images = t.constant((rng.random((batch, size, size, 3)) * 20 + 128).astype("float32"))
    idx = t.constant(np.arange(batch), t.int32)
    one = t.constant(1.0, t.float32)
    measure(images, idx).numpy()
    ascent_step(images, idx, one)[0].numpy()
    t_fwd, _ = timed(lambda: measure(images, idx).numpy(), reps)
    t_step, _ = timed(lambda: ascent_step(images, idx, one)[0].numpy(), reps)
    config = FilterConfig(layer=layer, steps=reps, image_size=size, count=batch, batch_size=batch, precision=precision)
    t_job, _ = timed(lambda: generate_patterns(vgg, config))
    return t_fwd, t_step, t_job / reps


def bench_filters(quick: bool) -> tuple[list[str], dict]:
    from engine.inspect.filters import FilterConfig, _feature_model, generate_patterns, model_layers

    k = keras()
    size, steps, layer = 150, (10 if quick else 40), "block3_conv1"
    rounds = 1 if quick else 3
    vgg = k.applications.VGG16(weights=None, include_top=False, input_shape=(size, size, 3))
    feature = k.Model(vgg.inputs[0], vgg.get_layer(layer).output)
    computed = [layer_.name for layer_ in model_layers(_feature_model(vgg, layer, "bfloat16"))
                if isinstance(layer_, k.layers.Conv2D)]
    book_eager_filter(feature, 0, size, 1)  # warm-up
    book_compiled = book_compiled_filter(feature, size, steps)
    book_compiled(0)  # trace
    plans = [
        ("compiled, 1 filter at a time, float32", dict(count=2, batch_size=1, precision="float32")),
        ("compiled, batch of 16, float32", dict(count=16, batch_size=16, precision="float32")),
        ("compiled, batch of 16, bfloat16", dict(count=16, batch_size=16, precision="bfloat16")),
    ]
    for _, plan in plans:  # trace + warm-up
        generate_patterns(vgg, FilterConfig(layer=layer, steps=1, image_size=size, count=plan["batch_size"],
                                            batch_size=plan["batch_size"], precision=plan["precision"]))
    load_before = os.getloadavg()
    book_times, times, ratios, results = [], {lab: [] for lab, _ in plans}, {lab: [] for lab, _ in plans}, {}
    eager_times, eager_ratio = [], []
    book_image = None
    for _ in range(rounds):  # interleaved: the book's compiled loop, its eager form and every plan once per round
        t_book, book_image = timed(lambda: book_compiled(0))
        book_times.append(t_book)
        t_eager, _ = timed(lambda: book_eager_filter(feature, 0, size, steps))
        eager_times.append(t_eager)
        eager_ratio.append(t_book / t_eager)
        for label, plan in plans:
            config = FilterConfig(layer=layer, steps=steps, image_size=size, **plan)
            seconds, results[label] = timed(lambda c=config: generate_patterns(vgg, c))
            times[label].append(seconds / plan["count"])
            ratios[label].append(t_book / (seconds / plan["count"]))
    load_after = os.getloadavg()
    rows = [(label, plan["count"], float(np.median(times[label])), float(np.median(ratios[label])),
             min(ratios[label]), max(ratios[label])) for label, plan in plans]
    f32, bf16 = results["compiled, batch of 16, float32"], results["compiled, batch of 16, bfloat16"]
    corr = [correlation(a, b) for a, b in zip(f32.images, bf16.images)]
    alive = f32.final_activation > 0.01 * f32.final_activation.max()  # random weights: some filters stay dead
    gain_ratio = bf16.final_activation[alive] / f32.final_activation[alive]
    same_as_book = correlation(results["compiled, 1 filter at a time, float32"].images[0], book_image)
    best = max(rows, key=lambda row: row[3])
    flops = step_flops(feature) * steps  # per filter, the book's algorithm
    peak = matmul_peak_gflops()

    def share(seconds: float) -> str:
        return f"{flops / seconds / 1e9:.0f} GFLOP/s = {flops / seconds / 1e9 / peak:.0%}"

    breakdown = {prec: _step_breakdown(vgg, layer, size, 32, prec, 2 if quick else 3)
                 for prec in ("bfloat16", "float32")}
    lines = [
        f"### 1. Filter patterns — VGG16 `{layer}`, {steps} steps, {size} px (random weights)",
        "",
        "The baseline is the book's algorithm as the book runs it: one filter at a time, each step compiled "
        "(the book's `K.function`, here `tf.function` of the same GradientTape step) on "
        f"`Model(input, {layer}.output)` (truncated at the layer). {rounds} interleaved round(s): in each, the "
        "baseline, its eager form, then every method once; the table gives the median seconds per filter and "
        "the median [min–max] of the per-round speed-ups. Load average (1/5/15 min) "
        f"{'/'.join(f'{v:.2f}' for v in load_before)} before, {'/'.join(f'{v:.2f}' for v in load_after)} after "
        "(2 cores shared with other work). **Rate** is the book's algorithmic work per filter (convolutions of "
        f"the forward pass and of the input gradient: {flops / 1e9:.1f} GFLOP for {steps} steps) over the time, "
        f"and its share of this machine's float32 matrix-multiply rate ({peak:.0f} GFLOP/s, best 2048×2048 "
        "`tf.matmul` on all cores) — the physical ceiling for float32 convolutions on a CPU; bfloat16 rows can "
        "pass it (bfloat16 units do more per cycle).",
        "",
        "| method | filters | s / filter | rate, share of float32 matmul peak | speed-up vs the book's compiled loop |",
        "|---|---:|---:|---:|---:|",
        f"| **book's loop, compiled** (baseline) | 1 | {np.median(book_times):.2f} | {share(float(np.median(book_times)))} "
        "| 1.0× |",
        f"| book's loop, eager (extra row: the previous baseline) | 1 | {np.median(eager_times):.2f} | "
        f"{share(float(np.median(eager_times)))} | {np.median(eager_ratio):.2f}× |",
    ]
    lines += [f"| {label} | {n} | {s:.3f} | {share(s)} | {'**' if label == best[0] else ''}{r:.1f}×"
              f"{'**' if label == best[0] else ''} ({lo:.1f}–{hi:.1f}) |" for label, n, s, r, lo, hi in rows]
    lines += [
        "",
        f"Computed convolutions (the truncated model): {', '.join(computed)} — nothing after `{layer}`.",
        "",
        f"bfloat16 vs float32 patterns (same filters, same start noise): correlation of the optimised images "
        f"min {min(corr):.4f}, mean {np.mean(corr):.4f}; final activation bfloat16 / float32 "
        f"{gain_ratio.min():.3f}–{gain_ratio.max():.3f} ({alive.sum()} of {len(alive)} filters not dead). ConvScope's compiled float32 filter 0 vs the book's loop: "
        f"correlation {same_as_book:.5f}.",
        "",
        "Where a step of a batch of 32 goes (ms per step, one run after the table):",
        "",
        "| precision | compiled forward | backward + update | generate_patterns overhead | total | per filter-step |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for prec, (t_fwd, t_step, t_job) in breakdown.items():
        lines.append(f"| {prec} | {t_fwd * 1e3:.0f} | {(t_step - t_fwd) * 1e3:.0f} | {(t_job - t_step) * 1e3:.0f} "
                     f"| {t_job * 1e3:.0f} | {t_job / 32 * 1e3:.1f} |")
    lines.append("")
    return lines, {"book": book_times, "rows": rows}


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
    book = k.Model(vgg.inputs[0], [vgg.get_layer(name).output for name in convs])  # the book: one model, all outputs
    rounds = 3
    compute_activations(vgg, image, convs)
    book.predict(image[None], verbose=0)
    for m in per_layer_models:
        m.predict(image[None], verbose=0)
    t_one, t_book, t_many = [], [], []
    for _ in range(rounds):  # interleaved
        t_book.append(timed(lambda: book.predict(image[None], verbose=0), 2)[0])
        t_one.append(timed(lambda: compute_activations(vgg, image, convs), 2)[0])
        t_many.append(timed(lambda: [m.predict(image[None], verbose=0) for m in per_layer_models], 1)[0])
    ratio = [b / o for b, o in zip(t_book, t_one)]
    many = [m / o for m, o in zip(t_many, t_one)]
    med = lambda values: float(np.median(values))  # noqa: E731
    return [
        f"### 3. Activations of all {len(convs)} conv layers of VGG16, 224 px",
        "",
        f"{rounds} interleaved rounds; ms are medians (absolute, disturbed by the shared load), ratios the median "
        "[min–max] of per-round ratios.",
        "",
        "| method | ms | ConvScope's speed-up over it |",
        "|---|---:|---:|",
        f"| **the book's way**: one `Model(inputs, [every layer's output])`, one `predict` (baseline) | "
        f"{med(t_book) * 1e3:.0f} | **{med(ratio):.2f}×** [{min(ratio):.2f}–{max(ratio):.2f}] |",
        f"| one model per layer, one `predict` each (extra row) | {med(t_many) * 1e3:.0f} | "
        f"{med(many):.1f}× [{min(many):.1f}–{max(many):.1f}] |",
        f"| `compute_activations`: one compiled pass for all layers (cached per model) | {med(t_one) * 1e3:.0f} | — |",
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
    parser.add_argument("--only", choices=["filters", "gradcam", "activations", "memory"],
                        help="run one section (write it with --out elsewhere)")
    args = parser.parse_args()
    began = time.perf_counter()
    sections = []
    benches = (bench_filters, bench_gradcam, bench_activations, bench_memory)
    for bench in benches:
        if args.only and bench.__name__ != f"bench_{args.only}":
            continue
        t0 = time.perf_counter()
        result = bench(args.quick)
        lines = result[0] if isinstance(result, tuple) else result
        sections += lines
        print(f"{bench.__name__}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - began
    from bench.machine import header as machine_header  # noqa: PLC0415

    header = [
        "# Benchmarks: looking inside (engine.inspect)",
        "",
        *machine_header(f"bench/bench_inspect.py{' --quick' if args.quick else ''}"),
        f"Each ratio compares with a baseline measured in the same run ({elapsed:.0f} s in all).",
        "",
    ]
    out = Path(args.out)
    if args.only and out.exists():  # replace that one section of the existing file
        old = out.read_text().splitlines()
        number = sections[0].split()[1]  # "### 1. ..." → "1."
        start = next((i for i, line in enumerate(old) if line.startswith(f"### {number}")), None)
        if start is not None:
            end = next((i for i in range(start + 1, len(old)) if old[i].startswith("### ")), len(old))
            note = (f"Section {number[:-1]} rerun alone with `bench/bench_inspect.py --only {args.only}"
                    f"{' --quick' if args.quick else ''}` ({elapsed:.0f} s).")
            first = next(i for i, line in enumerate(old) if line.startswith("### "))  # a fresh machine header
            atomic.write_text(out, "\n".join(header + old[first:start] + sections + [note, ""] + old[end:]))
            print(f"wrote {args.out}", file=sys.stderr)
            return 0
    atomic.write_text(args.out, "\n".join(header + sections))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
