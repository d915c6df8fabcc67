"""What refusing a hostile .keras file costs, and what the guard adds to loading a genuine one.

Each file is loaded in a fresh Python (``tests/hostile_models.LOAD_AND_REPORT``), as `convscope
predict` loads it: the wall time includes the interpreter's and, where reached, TensorFlow's start;
the peak is the child's own VmHWM (peak resident set). Goal (issue 19): refusing any hostile file ≤ 1.5 GB peak
and ≤ 10 s. Genuine files: the bases ConvScope ships, a 100 MB model, and any `--extra` files or run
folders. Writes docs/benchmarks_untrusted.md.

Run: ``.venv/bin/python bench/bench_untrusted.py [--extra RUN_DIR_OR_FILE ...]`` (about 3 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import hostile_models  # noqa: E402
import machine  # noqa: E402 - bench/machine.py
from engine import atomic  # noqa: E402


def _child(target: Path, scratch: Path) -> tuple[dict, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), TMPDIR=str(scratch), CONVSCOPE_HOME=str(scratch / "home"),
               TF_CPP_MIN_LOG_LEVEL="3")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", hostile_models.LOAD_AND_REPORT, str(target)], env=env,
                          capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - started
    if done.returncode != 0:
        return {"message": f"child failed: {done.stderr.strip().splitlines()[-1:]}", "peak_rss": 0}, wall
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def _tensorflow_start() -> float:
    """Seconds a fresh Python takes to start Keras/TensorFlow here, now (the floor of any check
    that needs Keras)."""
    code = "import time; t = time.monotonic(); from engine.tf_runtime import keras; keras(); print(time.monotonic() - t)"
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=600)
    return float(done.stdout.strip().splitlines()[-1])


def _genuine_files(folder: Path) -> list[tuple[str, Path]]:
    from engine.bases import efficientnet_lite
    from engine.bases.registry import get_base
    from engine.tf_runtime import keras

    k = keras()
    files = []
    os.environ["CONVSCOPE_HOME"] = str(folder / "home")
    with_top = next(p for p in efficientnet_lite.ensure_converted() if "notop" not in p.name)
    files.append(("EfficientNet-Lite0 with its ImageNet head (converted file)", with_top))
    edges = get_base("vgg16-edges")
    if edges.weights_status().present:
        edges.build(include_top=False, input_size=150).save(folder / "vgg16-edges.keras")
        files.append(("vgg16-edges conv base, 150 px", folder / "vgg16-edges.keras"))
    big = k.Sequential([k.Input((5000,)), k.layers.Dense(5000), k.layers.Dense(2)], name="big")
    big.save(folder / "big-100mb.keras")
    files.append(("a 100 MB dense model", folder / "big-100mb.keras"))
    return files


def _entry_table(path: Path) -> str:
    target = path / "best.keras" if path.is_dir() else path
    with zipfile.ZipFile(target) as archive:
        return ", ".join(f"{i.filename} {i.file_size:,} B" for i in archive.infolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", nargs="*", default=[], help="run folders or .keras files to load too")
    args = parser.parse_args()
    load = os.getloadavg()
    tf_start = _tensorflow_start()
    rows, genuine_rows = [], []
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        tiny = folder / "tiny.keras"
        from engine.tf_runtime import keras

        k = keras()
        inputs = k.Input((16, 16, 3))
        x = k.layers.Conv2D(4, 3)(k.layers.Rescaling(1 / 255)(inputs))
        k.Model(inputs, k.layers.Dense(2)(k.layers.GlobalAveragePooling2D()(x))).save(tiny)
        entries = hostile_models.genuine_entries(tiny)
        for case, maker in hostile_models.HOSTILE_MAKERS.items():
            scratch = Path(tempfile.mkdtemp(dir=temp))
            target = maker(entries, folder / f"{case}.keras")
            outcome, wall = _child(target, scratch)
            rows.append((case, target.stat().st_size, outcome, wall))
            print(case, f"{wall:.1f} s", f"{outcome['peak_rss'] / 2**20:.0f} MiB", outcome["message"], flush=True)
        for label, target in _genuine_files(folder) + [(f"given: {p}", Path(p)) for p in args.extra]:
            outcome, wall = _child(Path(target), Path(tempfile.mkdtemp(dir=temp)))
            genuine_rows.append((label, _entry_table(Path(target)), outcome, wall))
            print(label, f"{wall:.1f} s", outcome, flush=True)

    lines = [
        "# Untrusted model files: what a refusal costs (bench/bench_untrusted.py)",
        "",
        *machine.header("bench/bench_untrusted.py"),
        f"Load average at the start: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; every row is absolute "
        "(one run, no ratio). Each file is loaded in a fresh Python as `convscope predict` loads it; "
        "*wall* includes starting Python and, where reached, TensorFlow; *peak* is the child's VmHWM (peak resident set).",
        "Goal (issue 19): refusing any hostile file costs ≤ 1.5 GB peak and ≤ 10 s.",
        f"Starting Keras/TensorFlow alone took {tf_start:.1f} s in a fresh Python at the same time: "
        "the floor of the cases that need Keras (the declared variables are measured by Keras).",
        "",
        "| hostile file | size on disk | wall | peak | TensorFlow started | message |",
        "|---|---|---|---|---|---|",
    ]
    for case, size, outcome, wall in rows:
        lines.append(f"| {case} | {size / 2**20:.1f} MiB | {wall:.1f} s | {outcome['peak_rss'] / 2**20:.0f} MiB | "
                     f"{'yes' if outcome.get('tensorflow') else 'no'} | `{outcome['message']}` |")
    lines += ["", "| genuine file | entries | wall | peak | parameters loaded |", "|---|---|---|---|---|"]
    for label, entries, outcome, wall in genuine_rows:
        got = f"{outcome['parameters']:,}" if outcome.get("parameters") else f"refused: `{outcome['message']}`"
        lines.append(f"| {label} | {entries} | {wall:.1f} s | {outcome['peak_rss'] / 2**20:.0f} MiB | {got} |")
    atomic.write_text(ROOT / "docs" / "benchmarks_untrusted.md", "\n".join(lines) + "\n")
    print("wrote docs/benchmarks_untrusted.md")


if __name__ == "__main__":
    main()
