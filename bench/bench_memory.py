"""Peak resident memory of `convscope train` at the base's own size, per strategy; where it goes; and
what reading cached features from disk costs the head's epochs. Writes docs/benchmarks_memory.md's
measured section (the file keeps its prose above the ``MEASURED`` marker).

Each run is the CLI a user types (``python -m app.launcher train --data resources/demo/pullover-vs-coat
--strategy S --image-size N``) in its own process with a fresh data folder (no feature cache): its
peak resident memory is the process's ``ru_maxrss`` (os.wait4, as ``/usr/bin/time -v`` reports it),
and VmRSS is sampled every 0.5 s with the last engine event (``--json-events``), so each phase's
peak (TensorFlow and the base, extraction, the head's epochs, the final save) is on the page.

Then the head's epoch time with its features read from the cache file a batch of rows at a time
against the same features held in memory (the arrays the engine held before): one epoch each,
interleaved, ``--rounds`` rounds, on the cache the features run left.

Run: ``nice -n 10 .venv/bin/python bench/bench_memory.py [--strategies features,scratch-augmented,...]
[--rounds 3]`` (about 40 minutes for every strategy on 2 busy cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import machine  # noqa: E402 - bench/machine.py: the CPU and load on every page

DATA = ROOT / "resources" / "demo" / "pullover-vs-coat"
PAGE = ROOT / "docs" / "benchmarks_memory.md"
MARKER = "<!-- MEASURED: below this line bench/bench_memory.py rewrites the page -->"
GIB = 2**30
# name: (strategy, image size, extra arguments, what the row says)
RUNS = {
    "scratch": ("scratch", 150, ["--epochs", "1", "--no-augment"], "scratch (book-scratch), 1 epoch"),
    "scratch-augmented": ("scratch", 150, ["--epochs", "1", "--augment", "--augmentation", "book"],
                          "scratch + augmentation (book-scratch, the book's augmentation), 1 epoch"),
    "features": ("features", 224, [], "features (cached, flatten head), up to 30 epochs with early stopping"),
    "features-augmented": ("features-augmented", 224, ["--epochs", "1"],
                           "features-augmented (frozen base end to end), 1 epoch"),
    "finetune": ("finetune", 224, ["--head-epochs", "1", "--epochs", "1"],
                 "finetune (1 head epoch, then 1 epoch with the top of the base unfrozen)"),
}


def _vm_rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _phase_of(event: dict) -> str | None:
    """A short name for the phase an engine event starts (None: the phase goes on)."""
    kind, message = event.get("event"), str(event.get("message", ""))
    if kind == "Status":
        for start, name in (("scanning", "scan"), ("building base", "TensorFlow + base"),
                            ("extracting", "feature extraction"), ("reusing", "feature extraction"),
                            ("validation features:", "head built and compiled")):
            if message.startswith(start):
                return name
    if kind == "BatchProgress":
        return f"training ({event.get('phase', 'train')})"
    if kind == "RunFinished":
        return "after training"
    if kind == "CheckpointSaved" and Path(str(event.get("path", ""))).name in ("best.keras", "last.keras"):
        return "writing best.keras / last.keras"
    return None


def run_train(name: str, work: Path) -> dict:
    """One `convscope train` run in a fresh data folder: peak RSS, per-phase peaks, wall time, epochs."""
    strategy, size, extra, _ = RUNS[name]
    home, out = work / f"home-{name}", work / f"run-{name}"
    command = [sys.executable, "-m", "app.launcher", "train", "--data", str(DATA), "--strategy", strategy,
               "--image-size", str(size), "--out", str(out), "--no-tensorboard", "--json-events", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CONVSCOPE_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    load_before, started = machine.load(), time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    phase, peaks, epochs, done = "start", {}, [], threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss = _vm_rss(proc.pid)
            if rss is not None:
                peaks[phase] = max(peaks.get(phase, 0), rss)
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for line in proc.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        phase = _phase_of(event) or phase
        if event.get("event") == "EpochEnded":
            epochs.append({"phase": event.get("phase"), "seconds": event.get("seconds"),
                           "metrics": event.get("metrics", {})})
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: convscope train failed ({' '.join(command)})")
    return {"name": name, "peak_bytes": usage.ru_maxrss * 1024, "seconds": time.perf_counter() - started,
            "load_before": load_before, "load_after": machine.load(), "phase_peaks": peaks, "epochs": epochs,
            "home": str(home)}


def head_epoch_child(home: str, source: str) -> float:
    """Seconds of one epoch of the features strategy's head on the demo's cached training features,
    read from ``source``: "file" (the engine's way) or "memory" (the arrays loaded whole first)."""
    os.environ["CONVSCOPE_HOME"] = home
    from engine.models.presets import build_head, compile_model  # noqa: PLC0415
    from engine.paths import features_cache_dir  # noqa: PLC0415
    from engine.tf_runtime import keras  # noqa: PLC0415
    from engine.train import features  # noqa: PLC0415
    from engine.train.fitting import HEAD_STEPS_PER_EXECUTION  # noqa: PLC0415

    path = next(features_cache_dir().glob("*_train.npz"))
    labels = features.verify_cached(path)
    rows = (features.FeatureRows(features.FeatureFile(path), labels) if source == "file"
            else features.FeatureRows(*features.load_cached(path)))
    keras().utils.set_random_seed(0)
    classes = labels.shape[-1] if labels.ndim > 1 and labels.shape[-1] > 1 else 2
    head = build_head(rows.feature_shape[0], classes)
    compile_model(head, classes, 1e-3, HEAD_STEPS_PER_EXECUTION)  # as the strategy compiles it
    dataset = features.training_dataset(rows, 32, shuffle=True, seed=0)
    head.fit(dataset.take(4), epochs=1, verbose=0)  # trace and warm up outside the timing
    started = time.perf_counter()
    head.fit(dataset, epochs=1, verbose=0)
    return time.perf_counter() - started


def _gib(value: float) -> str:
    return f"{value / GIB:.2f} GiB"


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


def head_epochs(home: str, rounds: int) -> dict:
    """Interleaved rounds of one head epoch from the file and from memory, each in a fresh process."""
    times: dict[str, list[float]] = {"file": [], "memory": []}
    for _ in range(rounds):
        for source in ("file", "memory"):
            out = subprocess.run([sys.executable, __file__, "--head-epoch", home, source], cwd=ROOT, check=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
                                 capture_output=True, text=True).stdout
            times[source].append(float(out.strip().splitlines()[-1]))
    return times


def write_page(results: list[dict], epochs: dict | None, rounds: int) -> None:
    from engine import atomic  # noqa: PLC0415

    prose = PAGE.read_text().split(MARKER)[0].rstrip() if PAGE.exists() else "# Memory of a training run"
    lines = [prose, "", MARKER, "", "## Measured by bench/bench_memory.py", "", *machine.header("bench/bench_memory.py"),
             "", f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Peak resident memory is absolute, one "
             "run each (it does not depend on the load; the wall times do).", "",
             "| strategy | image size | peak resident (ru_maxrss) | wall time | load avg. before → after |",
             "|---|---:|---:|---:|---|"]
    for r in results:
        strategy, size, _, label = RUNS[r["name"]]
        lines.append(f"| {label} | {size} | **{_gib(r['peak_bytes'])}** ({r['peak_bytes'] / 1e9:.2f} GB) | "
                     f"{_minutes(r['seconds'])} | {r['load_before']} → {r['load_after']} |")
    lines += ["", "Where it goes: the highest VmRSS sampled (every 0.5 s) in each phase of the run, in order.", ""]
    for r in results:
        phases = "; ".join(f"{name} {_gib(peak)}" for name, peak in r["phase_peaks"].items())
        train = [e for e in r["epochs"] if e["seconds"] is not None]
        times = machine.summary([e["seconds"] for e in train], "{:.1f}") if train else "—"
        last = train[-1]["metrics"] if train else {}
        lines.append(f"- **{r['name']}**: {phases}. Epochs: {len(train)}, seconds per epoch {times} (median "
                     f"[range] over the run's epochs); last epoch {json.dumps({k: round(v, 3) for k, v in last.items()})}.")
    if epochs:
        ratios = [f / m for f, m in zip(epochs["file"], epochs["memory"])]
        lines += ["", "## The head's epoch: features read from the cache file against held in memory", "",
                  f"One epoch of the flatten head over the demo's 2,000 cached training feature vectors (62,720 floats "
                  f"each), batch 32, each in a fresh process; {rounds} interleaved rounds (median [range]):", "",
                  "| features | seconds per epoch |", "|---|---:|",
                  f"| read from the cache file, a batch of rows at a time (now) | {machine.summary(epochs['file'], '{:.1f}')} |",
                  f"| held in memory (before) | {machine.summary(epochs['memory'], '{:.1f}')} |",
                  f"| ratio file / memory, per round | {machine.summary(ratios)} |"]
    atomic.write_text(PAGE, "\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default=",".join(RUNS), help=f"comma-separated, of: {', '.join(RUNS)}")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the head-epoch comparison")
    parser.add_argument("--head-epoch", nargs=2, metavar=("HOME", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.head_epoch:
        print(head_epoch_child(*args.head_epoch))
        return 0
    names = [name.strip() for name in args.strategies.split(",") if name.strip()]
    unknown = [name for name in names if name not in RUNS]
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {', '.join(RUNS)}")
    work = Path(tempfile.mkdtemp(prefix="convscope_memory_"))
    try:
        results = []
        for name in names:
            results.append(run_train(name, work))
            print(name, _gib(results[-1]["peak_bytes"]), json.dumps(results[-1]["phase_peaks"]), flush=True)
        features = next((r for r in results if r["name"] == "features"), None)
        epochs = head_epochs(features["home"], args.rounds) if features and args.rounds else None
        print("head epochs", epochs, flush=True)
        write_page(results, epochs, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
