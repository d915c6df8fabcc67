"""Benchmark the pretrained bases: EfficientNet-Lite0 conversion, cached load, prediction.

Goals (issue): conversion < 5 s, loading the cached base < 2 s. Each step runs in a fresh
subprocess so TensorFlow's import is measured separately and caches do not leak between steps.
Writes its section to docs/benchmarks_bases.md. Run: ``.venv/bin/python bench/bench_bases.py``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import atomic  # noqa: E402

STEP = r"""
import json, sys, time
t0 = time.perf_counter()
from engine.tf_runtime import tf; tf()
t_tf = time.perf_counter() - t0
from engine.bases import efficientnet_lite as eff
step = sys.argv[1]
t = time.perf_counter()
if step == "read":
    from engine.bases.torch_legacy import load_state_dict
    load_state_dict(eff.package_weights_path(), eff.PTH_SHA256)
elif step == "convert":
    eff.ensure_converted()
elif step == "load_top":
    model = eff.build(include_top=True)
elif step == "load_notop":
    model = eff.build(include_top=False)
elif step == "load_vgg16_edges":
    from engine.bases.registry import get_base
    model = get_base("vgg16-edges").build(input_size=150)
elif step == "predict":
    from engine.models.loading import load_model
    from engine.predict import predict_images
    loaded = load_model("efficientnet-lite0")
    t = time.perf_counter()
    predict_images(loaded, sys.argv[2:], top_k=3)
    t_first = time.perf_counter() - t
    t = time.perf_counter()
    predict_images(loaded, sys.argv[2:], top_k=3)
    print(json.dumps({"tf_import": t_tf, "seconds": time.perf_counter() - t, "first": t_first}))
    sys.exit(0)
print(json.dumps({"tf_import": t_tf, "seconds": time.perf_counter() - t}))
"""


def run_step(step: str, home: str, *extra: str) -> dict:
    env = dict(os.environ, CONVSCOPE_HOME=home)
    out = subprocess.run([sys.executable, "-c", STEP, step, *extra], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    samples = sorted(str(p) for p in (ROOT / "resources" / "samples").glob("*.jpg"))
    rows = []
    with tempfile.TemporaryDirectory() as home:
        rows.append(("read .pth without torch (sha256 + restricted unpickler)", run_step("read", home)))
        rows.append(("convert EfficientNet-Lite0 (.pth → .keras + no-top weights)", run_step("convert", home)))
        rows.append(("load cached EfficientNet-Lite0 with ImageNet head", run_step("load_top", home)))
        rows.append(("load cached EfficientNet-Lite0 conv base (no top)", run_step("load_notop", home)))
        rows.append(("build vgg16-edges (HED h5 → Keras VGG16) at 150 px", run_step("load_vgg16_edges", home)))
        rows.append((f"predict {len(samples)} sample photos (warm, after a first call)",
                     run_step("predict", home, *samples)))
    lines = [
        "## Pretrained bases (bench/bench_bases.py)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} CPU cores "
        f"(shared), Python {platform.python_version()}, CPU TensorFlow. Each step in a fresh process; "
        "TensorFlow's import time is listed apart.",
        "",
        "| step | seconds | TF import (s) |",
        "|---|---|---|",
    ]
    for name, result in rows:
        lines.append(f"| {name} | {result['seconds']:.2f} | {result['tf_import']:.1f} |")
    convert = rows[1][1]["seconds"]
    load = rows[2][1]["seconds"]
    lines += ["", f"Goals: conversion < 5 s ({'met' if convert < 5 else 'NOT met'}: {convert:.2f} s); "
                  f"cached load < 2 s ({'met' if load < 2 else 'NOT met'}: {load:.2f} s).", ""]
    text = "\n".join(lines)
    atomic.write_text(ROOT / "docs" / "benchmarks_bases.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
