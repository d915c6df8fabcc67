"""Benchmark exports: per format and quantization, export time, artifact size, single-image latency in
the format's runtime against Keras on the same image, and the check's figures; one run.

Two trained runs on the bundled demo data (resources/demo/pullover-vs-coat, pre-split), made here:
the book's convnet from scratch with the book's augmentation (150 px), and cached EfficientNet-Lite0
features + dense head assembled into one model (96 px, the frozen nested base + head kind). Every
export is checked on the run's test split by the export job itself (for int8, calibrated on the
training split). Latency: one image, median of ``REPEATS`` calls after ``WARMUP`` calls, in the same
process. Writes docs/benchmarks_export.md. Run: ``.venv/bin/python bench/bench_export.py``.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import machine  # noqa: E402 - bench/machine.py
from engine import atomic  # noqa: E402
from engine.precision import this_cpu_flags  # noqa: E402

DATA = ROOT / "resources" / "demo" / "pullover-vs-coat"
WARMUP, REPEATS = 5, 50
PER_CLASS = 200  # images per class and subset (training is not what is measured)
CHECK_IMAGES = 200
EXPORTS = [("keras", "none"), ("savedmodel", "none"), ("litert", "none"), ("litert", "float16"),
           ("litert", "dynamic"), ("litert", "int8"), ("onnx", "none"), ("onnx", "float16"), ("onnx", "dynamic"),
           ("onnx", "int8")]


def cpu_facts() -> str:
    """The CPU as bench/machine.py names it, plus the int8 (VNNI) flags that matter for quantized exports."""
    flags = this_cpu_flags()
    wanted = [f for f in (*machine.FLAGS, "amx_int8", "avx512_vnni", "avx_vnni") if f in flags]
    return f"{machine.cpu_model()}, {os.cpu_count()} logical CPUs, flags: {' '.join(wanted) or 'none of avx2/avx512/amx'}"


def median_seconds(call, image) -> float:
    for _ in range(WARMUP):
        call(image)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        call(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_runs(root: Path) -> dict[str, Path]:
    from engine.train.config import TrainConfig
    from engine.train.strategies import train

    common = dict(data=str(DATA), batch_size=32, patience=0, tensorboard=False, max_per_class=PER_CLASS)
    scratch = train(TrainConfig(strategy="scratch", augment=True, augmentation="book", image_size=150, epochs=3,
                                out=str(root / "scratch-aug-150"), **common))
    features = train(TrainConfig(strategy="features", base="efficientnet-lite0", image_size=96, epochs=15,
                                 head_pooling="avg", out=str(root / "lite0-features-96"), **common))
    return {"book-scratch + augmentation, 150 px": Path(scratch.run_dir),
            "EfficientNet-Lite0 frozen base + head, 96 px": Path(features.run_dir)}


def measure(kind: str, run_dir: Path, root: Path) -> list[dict]:
    import numpy as np

    from engine.data.images import read_rgb_resized
    from engine.data.split import load_split
    from engine.export.job import ExportConfig, run
    from engine.export.registry import get_format
    from engine.models.loading import load_model

    loaded = load_model(str(run_dir))
    path = load_split(run_dir / "split").test[0][0]
    image = read_rgb_resized(path, loaded.input_size).astype("float32")[None]
    model = loaded.model
    keras_predict = median_seconds(lambda x: model.predict(x, verbose=0), image)
    keras_call = median_seconds(lambda x: np.asarray(model(x, training=False)), image)
    rows = []
    for fmt, quantize in EXPORTS:
        out = root / "exports" / f"{run_dir.name}-{fmt}-{quantize}"
        start = time.perf_counter()
        try:
            result = run(ExportConfig(model=str(run_dir), format=fmt, quantize=quantize, out=str(out),
                                      max_images=CHECK_IMAGES, max_accuracy_drop=1.0))
        except Exception as error:  # noqa: BLE001 - a failed export is a result of the benchmark too
            rows.append({"kind": kind, "format": fmt, "quantize": quantize, "error": str(error)[:200]})
            continue
        seconds = time.perf_counter() - start
        predict = get_format(fmt).implementation().load(Path(result.artifact))
        rows.append({"kind": kind, "format": fmt, "quantize": quantize, "seconds": seconds,
                     "size": result.size_bytes, "latency": median_seconds(predict, image),
                     "keras_predict": keras_predict, "keras_call": keras_call, "parity": result.parity})
        print(rows[-1]["format"], quantize, f"{seconds:.1f} s", result.size_bytes, flush=True)
    return rows


def table(rows: list[dict]) -> list[str]:
    lines = ["| model | format | quantization | export + check (s) | size (MB) | latency, 1 image (ms) | "
             "Keras predict / call (ms) | max abs diff | top-1 agreement | accuracy export / Keras |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['kind']} | {r['format']} | {r['quantize']} | failed: {r['error']} | | | | | | |")
            continue
        p = r["parity"]
        lines.append(
            f"| {r['kind']} | {r['format']} | {r['quantize']} | {r['seconds']:.1f} | {r['size'] / 1e6:.2f} | "
            f"{r['latency'] * 1e3:.2f} | {r['keras_predict'] * 1e3:.1f} / {r['keras_call'] * 1e3:.2f} | "
            f"{p['max_abs_diff']:.2g} | {p['top1_agreement']:.2%} | "
            f"{p['export_accuracy']:.2%} / {p['keras_accuracy']:.2%} |")
    return lines


def main() -> int:
    from engine.export.card import versions

    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
        root = Path(tmp)
        os.environ.setdefault("CONVSCOPE_HOME", str(root / "home"))
        rows = []
        for kind, run_dir in train_runs(root).items():
            rows += measure(kind, run_dir, root)
    load_after = os.getloadavg()
    text = "\n".join([
        "# Export benchmark (`bench/bench_export.py`)",
        "",
        f"Machine: {cpu_facts()}; {platform.platform()}. Load average before / after: "
        f"{load_before[0]:.1f} / {load_after[0]:.1f} (shared with other work: latencies are disturbed, "
        f"ratios within one row are the useful figure). Versions: "
        + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
        "",
        f"Models trained here on resources/demo/pullover-vs-coat ({PER_CLASS} images per class per subset); "
        f"every export checked by the job itself on {CHECK_IMAGES} images of the run's test split (spread over "
        "both classes); int8 calibrated on up to 100 "
        "training images. Latency: one image, median of 50 calls after 5 warm-up calls; Keras `predict` "
        "(its per-call overhead included) and a direct `model(x, training=False)` call on the same image.",
        "",
        *table(rows),
        "",
        f"Whole benchmark: {time.perf_counter() - started:.0f} s.",
        "",
    ])
    atomic.write_text(ROOT / "docs" / "benchmarks_export.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
