"""Cluster training on one machine: images/s of 2 workers on 127.0.0.1 against 1 process, and the
all-reduce time per step; writes docs/benchmarks_distributed.md (about 3 minutes on 2 CPU cores).

Both training runs go through ``convscope train`` (the CLI's route, in fresh processes) on the same
data, seed and global batch: one process, then ``--cluster 127.0.0.1:A,127.0.0.1:B`` with two
workers. Throughput is training images per second of epoch wall time (the validation pass is inside
that time for both), over epochs 2.. (epoch 1 traces the step functions).

The all-reduce is timed apart, in the same run: two worker processes under the same
MultiWorkerMirroredStrategy sum a list of tensors shaped like book-scratch's trainable weights (what
Keras all-reduces every step), many times, in a ``tf.function``.

On one 2-core machine two workers cannot be faster than one process: they share the same cores,
and each step adds an all-reduce over loopback gRPC. The figures show that overhead, not the
speed-up of separate machines (docs/DISTRIBUTED.md works that out in principle).

Run: ``.venv/bin/python bench/bench_distributed.py``
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

PER_CLASS = 256        # 512 images: 256 for training (8 steps of 32), 128 for validation
IMAGE_SIZE = 64
BATCH = 32             # global batch: 16 per worker in the cluster
EPOCHS = 4
ALLREDUCE_STEPS = 50


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        return "uptime unavailable"


def _train_args(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "app.launcher", "train", "--data", str(data), "--out", str(out),
            "--preset", "book-scratch", "--image-size", str(IMAGE_SIZE), "--batch-size", str(BATCH),
            "--epochs", str(EPOCHS), "--patience", "0", "--seed", "0", "--no-augment", "--no-tensorboard",
            "--json-events"]


def _epoch_seconds(stdout: str) -> list[float]:
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return [e["seconds"] for e in events if e.get("event") == "EpochEnded"]


def _run(commands: list[list[str]], home: Path) -> list[str]:
    env = dict(_env(), CONVSCOPE_HOME=str(home))
    procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        if proc.returncode != 0:
            raise SystemExit(f"a run failed:\n{err[-3000:]}")
        outputs.append(out)
    return outputs


def train_throughput(data: Path, work: Path, train_images: int) -> dict:
    from engine.train.cluster_spec import free_local_ports

    single = _epoch_seconds(_run([_train_args(data, work / "single")], work / "home")[0])
    cluster = ",".join(f"127.0.0.1:{p}" for p in free_local_ports(2))
    outputs = _run([_train_args(data, work / "cluster") + ["--cluster", cluster, "--task", str(task)]
                    for task in (0, 1)], work / "home")
    chief = _epoch_seconds(outputs[0])
    steady = {"1 process": single[1:], "2 workers": chief[1:]}
    return {name: {"epoch_s": round(statistics.mean(s), 3), "images_per_s": round(train_images / statistics.mean(s), 1),
                   "epochs": [round(x, 3) for x in s]} for name, s in steady.items()}


# --------------------------------------------------------------------------- all-reduce
def allreduce_worker(task: int, cluster: str) -> None:
    """One of the two processes of the all-reduce timing (prints a JSON line on the chief)."""
    from engine.train.cluster import _configure_coordination
    from engine.train.cluster_spec import ClusterSpec
    from engine.tf_runtime import tf

    t = tf()
    spec = ClusterSpec.parse(cluster, task)
    _configure_coordination(spec)
    resolver = t.distribute.cluster_resolver.SimpleClusterResolver(
        t.train.ClusterSpec({"worker": list(spec.workers)}), task_type="worker", task_id=task, rpc_layer="grpc")
    strategy = t.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    from engine.models.presets import build_preset

    with strategy.scope():
        model = build_preset("book-scratch", IMAGE_SIZE, 2)
    shapes = [tuple(w.shape) for w in model.trainable_weights]
    grads = [t.ones(s) for s in shapes]

    @t.function
    def step():
        def replica():
            context = t.distribute.get_replica_context()
            return context.all_reduce(t.distribute.ReduceOp.SUM, grads)
        return strategy.run(replica)

    for _ in range(5):
        step()
    times = []
    for _ in range(ALLREDUCE_STEPS):
        started = time.perf_counter()
        result = step()
        _ = [r.numpy() for r in strategy.experimental_local_results(result[0])]  # wait for it
        times.append(time.perf_counter() - started)
    if spec.is_chief:
        params = sum(int(t.size(t.zeros(s))) for s in shapes)
        print(json.dumps({"params": params, "bytes": params * 4, "tensors": len(shapes),
                          "median_ms": round(statistics.median(times) * 1000, 2),
                          "p90_ms": round(sorted(times)[int(0.9 * len(times))] * 1000, 2)}), flush=True)


def allreduce_time(work: Path) -> dict:
    from engine.train.cluster_spec import free_local_ports

    cluster = ",".join(f"127.0.0.1:{p}" for p in free_local_ports(2))
    outputs = _run([[sys.executable, __file__, "--allreduce-worker", str(task), cluster] for task in (0, 1)],
                   work / "home")
    return json.loads(outputs[0].strip().splitlines()[-1])


def main() -> None:
    from imagegen import make_shapes_dataset

    load_before = _uptime()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = make_shapes_dataset(work / "data", per_class=PER_CLASS, size=IMAGE_SIZE)
        train_images = PER_CLASS  # half of the 2 x PER_CLASS images (validation and test fractions 0.25)
        started = time.perf_counter()
        throughput = train_throughput(data, work, train_images)
        reduce = allreduce_time(work)
        total = time.perf_counter() - started
    load_after = _uptime()
    one, two = throughput["1 process"], throughput["2 workers"]
    steps = train_images // BATCH
    mb = reduce["bytes"] / 1e6
    lines = [
        "# Cluster training on one machine: 2 workers on loopback against 1 process",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. "
        f"Generated by `bench/bench_distributed.py` on {time.strftime('%Y-%m-%d')} in {total:.0f} s.",
        f"Load (`uptime`) before: `{load_before}`; after: `{load_after}` — other agents share this machine,"
        " so the figures are disturbed.",
        "",
        f"book-scratch at {IMAGE_SIZE} px, {2 * PER_CLASS} shape images ({train_images} for training: {steps} steps "
        f"of the global batch {BATCH}), {EPOCHS} epochs, no augmentation, through `convscope train`; the cluster "
        "is `--cluster 127.0.0.1:A,127.0.0.1:B` (each worker a batch of "
        f"{BATCH // 2} per step). Images/s = training images / epoch wall time (validation included), "
        "epochs 2.. .",
        "",
        "| run | mean epoch s | training images/s | epochs (s) |",
        "|---|---|---|---|",
        f"| 1 process | {one['epoch_s']} | {one['images_per_s']} | {one['epochs']} |",
        f"| 2 workers, loopback | {two['epoch_s']} | {two['images_per_s']} | {two['epochs']} |",
        "",
        f"Two workers / one process: **{two['images_per_s'] / one['images_per_s']:.2f}×** the throughput.",
        "",
        f"All-reduce of book-scratch's gradients ({reduce['params']:,} parameters, {mb:.2f} MB in "
        f"{reduce['tensors']} tensors) between the two workers, {ALLREDUCE_STEPS} times: median "
        f"**{reduce['median_ms']} ms** per step (p90 {reduce['p90_ms']} ms); × {steps} steps = "
        f"{reduce['median_ms'] * steps / 1000:.2f} s of each {two['epoch_s']} s epoch.",
        "",
        "Why two workers are slower here: both share the same 2 cores (each also runs its own input "
        "pipeline and validation), and every step adds the all-reduce over loopback gRPC. Separate "
        "machines each bring their own cores; what then bounds the speed-up is the all-reduce over "
        "the network — docs/DISTRIBUTED.md, *How a cluster scales*.",
        "",
    ]
    out = ROOT / "docs" / "benchmarks_distributed.md"
    from engine import atomic

    atomic.write_text(out, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--allreduce-worker":
        allreduce_worker(int(sys.argv[2]), sys.argv[3])
    else:
        main()
