"""Input pipeline throughput: ConvScope's tf.data pipeline + Keras augmentation layers against the
book's ``ImageDataGenerator.flow_from_directory`` on the same 2,000 generated 150x150 JPEGs.

Keras 3.15 no longer ships ImageDataGenerator under ``keras.preprocessing.image``; its legacy copy is
reachable publicly as ``tf.keras.preprocessing.image.ImageDataGenerator`` (TensorFlow's Keras 3 shim),
which is what this baseline uses (it needs SciPy for its affine warps).

Both sides decode, resize to 150x150, apply the book's augmentation (rotation 40, shifts 0.2, shear 0.2,
zoom 0.2, horizontal flip, nearest fill) and deliver float32 batches of 32; neither caches. Goal: >= 3x.

    .venv/bin/python bench/bench_pipeline.py [--images 2000]

Prints a markdown table and rewrites its section of docs/benchmarks_pipeline.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from engine import atomic  # noqa: E402
from engine.tf_runtime import tf  # noqa: E402

DOC = ROOT / "docs" / "benchmarks_pipeline.md"
START, END = "<!-- bench_pipeline:start -->", "<!-- bench_pipeline:end -->"
SIZE, BATCH = 150, 32
BOOK_RECIPE = dict(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=0.2,
                   zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")


def generate(folder: Path, count: int) -> Path:
    from imagegen import make_shapes_dataset  # noqa: PLC0415

    return make_shapes_dataset(folder, per_class=count // 2, size=SIZE, classes=("cats", "dogs"), fmt="jpg")


def time_epoch(batches) -> tuple[int, float]:
    start, seen = time.perf_counter(), 0
    for images, _ in batches:
        seen += int(images.shape[0])
    return seen, time.perf_counter() - start


def baseline(root: Path, count: int) -> float:
    generator = tf().keras.preprocessing.image.ImageDataGenerator(**BOOK_RECIPE)
    flow = generator.flow_from_directory(str(root), target_size=(SIZE, SIZE), batch_size=BATCH,
                                         class_mode="binary", seed=0)

    def one_epoch():
        for _ in range(len(flow)):
            yield next(flow)

    seen, seconds = time_epoch(one_epoch())
    assert seen == count, seen
    return seen / seconds


def convscope(root: Path, count: int, augment: bool | str) -> tuple[float, float, float]:
    """(scan images/s, first-epoch images/s, second-epoch images/s)."""
    from engine.data.augment import build_augmentation  # noqa: PLC0415
    from engine.data.pipeline import make_dataset  # noqa: PLC0415
    from engine.data.scan import ScanConfig, scan  # noqa: PLC0415

    start = time.perf_counter()
    result = scan(ScanConfig(str(root)))
    scan_rate = count / (time.perf_counter() - start)
    dataset = make_dataset(result.files["all"], SIZE, BATCH, num_classes=2, shuffle=True, seed=0)
    block = build_augmentation("book", seed=0) if augment else None
    # As in training: tf.data decodes ahead (prefetch) while the augmentation block runs compiled,
    # the way it runs inside the model's train step.
    augment_batch = tf().function(single_warp_book if augment == "single-warp"
                                  else lambda images: block(images, training=True))

    def batches():
        for images, labels in dataset:
            yield (augment_batch(images) if block is not None else images), labels

    rates = []
    for _ in range(2):
        seen, seconds = time_epoch(batches())
        assert seen == count, seen
        rates.append(seen / seconds)
    return scan_rate, rates[0], rates[1]


def single_warp_book(images):
    """Prototype, not shipped: the book's flip, rotation, shifts, shear and zoom composed into ONE
    projective warp per image (as ImageDataGenerator does) instead of one resample per Keras layer."""
    t = tf()
    n = t.shape(images)[0]
    h, w = t.cast(t.shape(images)[1], t.float32), t.cast(t.shape(images)[2], t.float32)
    uniform = lambda low, high: t.random.uniform([n], low, high)  # noqa: E731
    angle, shear = uniform(-40.0, 40.0) * (3.14159265 / 180), uniform(-0.2, 0.2) * (3.14159265 / 180)
    zx, zy = uniform(0.8, 1.2), uniform(0.8, 1.2)
    flip = t.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0)
    tx, ty = uniform(-0.2, 0.2) * w, uniform(-0.2, 0.2) * h
    cos, sin = t.cos(angle), t.sin(angle)
    # input = R @ Shear @ Zoom @ Flip @ (output - centre) + centre + shift
    a0, a1 = (cos * zx - sin * 0.0) * flip, (cos * -t.sin(shear) - sin * t.cos(shear)) * zy
    b0, b1 = (sin * zx) * flip, (sin * -t.sin(shear) + cos * t.cos(shear)) * zy
    cx, cy = w / 2, h / 2
    a2, b2 = cx - a0 * cx - a1 * cy + tx, cy - b0 * cx - b1 * cy + ty
    zeros = t.zeros([n])
    matrix = t.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return t.raw_ops.ImageProjectiveTransformV3(images=images, transforms=matrix, output_shape=t.shape(images)[1:3],
                                                fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")


def write_section(table: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Input pipeline benchmarks\n\n"
    section = f"{START}\n{table}\n{END}"
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    atomic.write_text(DOC, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="convscope-bench-") as folder:
        root = generate(Path(folder) / "data", args.images)
        base = baseline(root, args.images)
        scan_rate, cold, warm = convscope(root, args.images, augment=True)
        _, _, plain = convscope(root, args.images, augment=False)
        _, _, single = convscope(root, args.images, augment="single-warp")
    ratio = warm / base
    table = "\n".join([
        f"Input pipeline, {args.images} generated {SIZE}x{SIZE} JPEGs, batches of {BATCH}, book augmentation, "
        f"no cache; {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"TensorFlow {tf().__version__}, {time.strftime('%Y-%m-%d')}. Shared machine: other jobs may run.",
        "",
        "| pipeline | images/s | vs baseline |",
        "|---|---:|---:|",
        f"| ImageDataGenerator.flow_from_directory (book, baseline) | {base:.0f} | 1.0x |",
        f"| ConvScope tf.data + Keras augmentation layers, epoch 1 (includes tracing) | {cold:.0f} | {cold / base:.1f}x |",
        f"| ConvScope tf.data + Keras augmentation layers, epoch 2 | {warm:.0f} | **{ratio:.1f}x** (goal >= 3x) |",
        f"| ConvScope tf.data decode + resize only, epoch 2 | {plain:.0f} | {plain / base:.1f}x |",
        f"| prototype: tf.data + the book's transforms as one warp per image, epoch 2 | {single:.0f} | {single / base:.1f}x |",
        f"| ConvScope scan (full decode check, once per dataset) | {scan_rate:.0f} | - |",
    ])
    out = sys.stdout
    if out is not None:
        out.write(table + "\n")
    write_section(table)
    return 0 if ratio >= 3.0 else 1


if __name__ == "__main__":
    sys.exit(main())
