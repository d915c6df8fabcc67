"""Start `convscope train` worker processes of a loopback cluster for the cluster tests.

Each worker runs the real CLI (``engine.cli.main``) in its own interpreter. With ``tiny=True`` the
from-scratch preset is swapped for a dropout-free three-layer model, so a two-worker run can be
compared weight for weight with a one-process run (Dropout draws its masks per replica, on half
batches, so the book's preset cannot match bit for bit).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = textwrap.dedent("""
    import sys
    if sys.argv[1] == "--tiny":
        del sys.argv[1]
        from engine.models import presets

        def tiny(name, image_size, num_classes, *, augmentation=None):
            from engine.tf_runtime import keras
            layers = keras().layers
            inputs = keras().Input(shape=(image_size, image_size, 3), name="image")
            x = layers.Rescaling(1.0 / 255)(inputs)
            x = layers.Conv2D(4, 3, activation="relu", name="conv")(x)
            x = layers.GlobalAveragePooling2D()(x)
            return keras().Model(inputs, presets.classifier(x, num_classes), name="tiny")

        presets.build_preset = tiny
    from engine.cli import main
    code = main(sys.argv[1:])
    trainer = sys.modules.get("keras.src.backend.tensorflow.trainer")
    print("keras trainer patched:", hasattr(trainer, "_convscope_originals"), flush=True)
    sys.exit(code)
""")


def train_args(data: Path, out: Path, *, epochs: int = 3, batch_size: int = 8, image_size: int = 48,
               learning_rate: float = 1e-2) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--epochs", str(epochs), "--batch-size",
            str(batch_size), "--image-size", str(image_size), "--learning-rate", str(learning_rate),
            "--patience", "0", "--seed", "0", "--no-tensorboard"]


def start(args: list[str], *, tiny: bool = False, cluster: list[str] | None = None, task: int | None = None,
          home: Path | None = None, log: Path | None = None) -> subprocess.Popen:
    """Start one worker (``cluster``/``task`` given) or a one-process run (neither). Its output goes
    to pipes (read them with :func:`finish`), or to the file ``log`` when nothing reads it meanwhile
    (a full pipe would block the worker)."""
    argv = [sys.executable, "-c", WORKER] + (["--tiny"] if tiny else []) + list(args)
    if cluster is not None:
        argv += ["--cluster", ",".join(cluster), "--task", str(task)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    if home is not None:
        env["CONVSCOPE_HOME"] = str(home)
    if log is not None:
        with open(log, "w", encoding="utf-8") as handle:
            return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, text=True)
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def loopback_cluster(count: int = 2) -> list[str]:
    from engine.train.cluster_spec import free_local_ports

    return [f"127.0.0.1:{port}" for port in free_local_ports(count)]


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"worker did not end within {timeout} s:\n{err[-3000:]}") from None
    return proc.returncode, out or "", err or ""


def convscope_error(stderr: str) -> str:
    """The one-line ConvScope error a worker printed (the CLI writes it as 'convscope: ...')."""
    lines = [line for line in stderr.splitlines() if line.startswith("convscope: ")]
    return lines[-1] if lines else ""
