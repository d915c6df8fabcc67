"""The faithfulness table of the four CAM methods on the bundled sample photos and the cat|coffee
composite (EfficientNet-Lite0, predicted class, the 224 px centre crop); writes
docs/faithfulness_samples.md.

Run: ``.venv/bin/python bench/faithfulness_table.py [--methods gradcam,...] [--steps N]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import atomic  # noqa: E402


def composite() -> np.ndarray:
    from engine.data.images import read_rgb_resized
    from engine.paths import resources_dir

    samples = resources_dir() / "samples"
    return np.concatenate([read_rgb_resized(samples / "chelsea.jpg", 224),
                           read_rgb_resized(samples / "coffee.jpg", 224)], axis=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="gradcam,gradcam++,scorecam,saliency")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--input", choices=["whole", "predict", "resize"], default="predict",
                        help="the explained input (default predict: the 224×224 centre crop; the composite is "
                             "always explained whole, so both objects are in it)")
    parser.add_argument("--images", default="", help="comma-separated names to keep (default: all)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "faithfulness_samples.md"))
    args = parser.parse_args()

    from engine.data.images import read_rgb
    from engine.inspect.explain import ExplainRequest, assess, explain
    from engine.inspect.faithfulness import FaithfulnessConfig
    from engine.models.loading import load_model
    from engine.paths import resources_dir

    loaded = load_model("efficientnet-lite0")
    images = {p.name: read_rgb(p) for p in sorted((resources_dir() / "samples").glob("*.jpg"))}
    images["chelsea|coffee (espresso)"] = composite()
    images["chelsea|coffee (tabby)"] = images["chelsea|coffee (espresso)"]
    if args.images:
        images = {name: image for name, image in images.items() if name.split(".")[0].split(" ")[0] in args.images.split(",")}
    rows = []
    for name, image in images.items():
        for method in args.methods.split(","):
            wanted = {"chelsea|coffee (espresso)": "espresso", "chelsea|coffee (tabby)": "tabby"}.get(name)
            started = time.perf_counter()
            mode = "whole" if wanted else args.input
            explained = explain(loaded, image, ExplainRequest(method=method, class_=wanted, input=mode))
            trust = assess(loaded, explained, FaithfulnessConfig(steps=args.steps))
            f, e = trust.faithfulness, trust.faithfulness.explained
            rand, blob = f.baselines["random"], f.baselines["blob"]
            half = explained.heatmap.shape[1] // 2
            share = ""
            if "|" in name:
                left = float(explained.heatmap[:, :half].sum() / max(explained.heatmap.sum(), 1e-9))
                share = f"{left:.2f}" if wanted == "tabby" else f"{1 - left:.2f}"
            rows.append(
                f"| {name} | {explained.class_name} {f.probability:.2f} | {method} | {e.deletion.auc:.3f} | "
                f"{e.insertion.auc:.3f} | {e.road_morf.auc:.3f} / {e.road_lerf.auc:.3f} | "
                f"{rand.deletion.auc:.3f} / {rand.insertion.auc:.3f} | {blob.deletion.auc:.3f} / {blob.insertion.auc:.3f} | "
                f"{e.drop_at():.0%} / {rand.drop_at():.0%} | "
                f"{', '.join(f'{rho:.2f}' for _, rho in trust.sanity.stages)}{' ⚠' if trust.sanity.flagged else ''} | "
                f"{share} |")
            print(rows[-1], f"({time.perf_counter() - started:.1f} s)", flush=True)
    lines = [
        "# Faithfulness of the four CAM methods on the sample photos",
        "",
        f"`bench/faithfulness_table.py`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: EfficientNet-Lite0, "
        f"the predicted class (the composite: the class named), input '{args.input}' (predict: the 224×224 centre "
        "crop; the 224×448 composite whole), logit target, "
        f"{args.steps} steps per curve.",
        "",
        "Deletion AUC: lower is more faithful; insertion AUC: higher. ROAD: most relevant first (lower) / least "
        "relevant first (higher). Drop: how much the class probability falls once the map's top 10% is deleted, "
        "against a random map's. Sanity: Spearman correlation of the map with the map after randomising the top "
        "1, 2, 3 weighted layers (cascading); ⚠ = still ≥ 0.5 after the third. Share: the heatmap's mass on the "
        "named object's half of the composite.",
        "",
        "| image | class p | method | deletion | insertion | ROAD MoRF / LeRF | random del / ins | blob del / ins | "
        "drop 10% map / random | sanity ρ | share |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    atomic.write_text(Path(args.out), "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
