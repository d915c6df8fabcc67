"""Training inside a tf.distribute strategy: MirroredStrategy over two logical CPU devices.

Logical devices must be configured before TensorFlow initialises its devices, so this runs in a
fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from imagegen import make_shapes_dataset

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import json, sys
    from engine.tf_runtime import tf
    t = tf()
    cpu = t.config.list_physical_devices("CPU")[0]
    t.config.set_logical_device_configuration(cpu, [t.config.LogicalDeviceConfiguration()] * 2)
    from engine.train.config import TrainConfig
    from engine.train.strategies import train
    from engine.events import Status
    cfg = TrainConfig(data=sys.argv[1], out=sys.argv[2], image_size=48, batch_size=8, epochs=3, patience=0,
                      learning_rate=1e-3, tensorboard=False, distribute="mirrored")
    seen = []
    result = train(cfg, seen.append)
    from engine.tf_runtime import keras
    model = keras().models.load_model(sys.argv[2] + "/last.keras")
    print(json.dumps({"devices": len(t.config.list_logical_devices("CPU")), "status": result.status,
                      "loss": result.history["loss"], "params": model.count_params(),
                      "status_lines": [e.message for e in seen if isinstance(e, Status)]}))
""")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    data = make_shapes_dataset(tmp_path / "shapes", per_class=16, size=48)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(data), str(tmp_path / "run")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["devices"] == 2 and report["status"] == "finished"
    assert "training on 2 replicas (MirroredStrategy)" in report["status_lines"]
    assert len(report["loss"]) == 3 and report["loss"][-1] < report["loss"][0]
