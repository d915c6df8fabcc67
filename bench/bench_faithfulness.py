"""Speed of the faithfulness scores; writes docs/benchmarks_faithfulness.md.

1. Deletion + insertion + ROAD (both orders) for one image — EfficientNet-Lite0, the 224 px centre
   crop of the cat photo, 20 steps each, Grad-CAM map — with the perturbed images scored in batches
   of 32 against one forward pass per step (``batch_size=1``, the same compiled pass), same run,
   alternating, median of rounds; and the scoring of the deletion + insertion images alone against
   the straightforward loop that calls ``model(x)`` once per step (eager).
2. The whole faithfulness panel of the Grad-CAM tab for one image (``assess``: the curves above, the
   random-map and blob baselines, the three-stage sanity check), warm (second call onwards).

Run: ``.venv/bin/python bench/bench_faithfulness.py [--rounds N]``. The load average is recorded
beside the figures: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import atomic  # noqa: E402


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks_faithfulness.md"))
    args = parser.parse_args()

    from engine.data.images import read_rgb
    from engine.inspect.explain import ExplainRequest, assess, explain
    from engine.inspect.faithfulness import FaithfulnessConfig, faithfulness
    from engine.models.loading import load_model
    from engine.paths import resources_dir

    loaded = load_model("efficientnet-lite0")
    photo = read_rgb(resources_dir() / "samples" / "chelsea.jpg")
    explained = explain(loaded, photo, ExplainRequest(input="predict"))
    cam = explained.cam
    loads = [load_average()]

    def curves(batch_size: int) -> float:
        config = FaithfulnessConfig(steps=20, road=True, baselines=False, batch_size=batch_size)
        start = time.perf_counter()
        faithfulness(loaded.model, explained.input_array, cam.heatmap, cam.class_index, config)
        return time.perf_counter() - start

    curves(32), curves(1)  # traces for both batch shapes
    batched, single = [], []
    for _ in range(args.rounds):
        batched.append(curves(32))
        single.append(curves(1))
        loads.append(load_average())
    from engine.inspect.faithfulness import heat_order, image_scorer, perturbations  # noqa: PLC0415

    rng = __import__("numpy").random.default_rng(0)
    blocks = [images for _, _, images in perturbations(explained.input_array.astype("float32"),
                                                        heat_order(cam.heatmap, rng), 20, False, rng)]
    scorer = image_scorer(loaded.model, cam.class_index, explained.input_array.shape, batch_size=32)
    scorer(blocks[0])
    eager, compiled = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        for images in blocks:
            scorer(images)
        compiled.append(time.perf_counter() - start)
        start = time.perf_counter()
        for images in blocks:
            for image in images:
                loaded.model(image[None], training=False)
        eager.append(time.perf_counter() - start)
        loads.append(load_average())
    assess(loaded, explained)  # warm: the sanity twin and its traces
    panel = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        assess(loaded, explained)
        panel.append(time.perf_counter() - start)
        loads.append(load_average())
    whole = explain(loaded, photo, ExplainRequest(input="whole"))
    assess(loaded, whole)
    start = time.perf_counter()
    assess(loaded, whole)
    panel_whole = time.perf_counter() - start

    b, s, p = statistics.median(batched), statistics.median(single), statistics.median(panel)
    lines = [
        "# Faithfulness scores: speed",
        "",
        f"`bench/bench_faithfulness.py`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores. "
        f"Load average (1/5/15 min) before and after each round: {'; '.join(loads)} — the machine was shared "
        "with other agents' jobs, so absolute times are inflated; the ratio is taken within each round.",
        "",
        "EfficientNet-Lite0, the 224×224 centre crop of `chelsea.jpg`, Grad-CAM of the predicted class; "
        "deletion + insertion (21 images each) + ROAD most/least relevant first (20 imputed images each).",
        "",
        "| measure | median | rounds |",
        "|---|---|---|",
        f"| curves, batches of 32 | {b:.2f} s | {', '.join(f'{x:.2f}' for x in batched)} |",
        f"| curves, one forward pass per step | {s:.2f} s | {', '.join(f'{x:.2f}' for x in single)} |",
        f"| **speed-up** | **{s / b:.1f}×** (goal ≥ 4×) | {', '.join(f'{y / x:.1f}' for x, y in zip(batched, single))} |",
        f"| scoring the 42 deletion + insertion images: batches of 32 | {statistics.median(compiled):.2f} s | "
        f"{', '.join(f'{x:.2f}' for x in compiled)} |",
        f"| the same, `model(x)` once per step (eager) | {statistics.median(eager):.2f} s | "
        f"{', '.join(f'{x:.2f}' for x in eager)} |",
        f"| **speed-up of the scoring vs the eager loop** | **{statistics.median(eager) / statistics.median(compiled):.1f}×** | "
        f"{', '.join(f'{y / x:.1f}' for x, y in zip(compiled, eager))} |",
        f"| whole panel (`assess`: curves, random + blob baselines, 3-stage sanity check), 224×224 | {p:.2f} s "
        f"(goal ≤ 3 s) | {', '.join(f'{x:.2f}' for x in panel)} |",
        f"| whole panel on the Grad-CAM tab's default input (the whole photo, {whole.input_array.shape[1]}×"
        f"{whole.input_array.shape[0]}) | {panel_whole:.2f} s | 1 |",
        "",
    ]
    atomic.write_text(Path(args.out), "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
