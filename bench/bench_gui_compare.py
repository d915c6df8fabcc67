"""Two revisions' GUI benchmarks interleaved in one run (first paint, timer gaps while training,
epoch time with the window against the CLI), for "no regression" checks on a shared, loaded machine.

Run: ``.venv/bin/python bench/bench_gui_compare.py OLD_TREE NEW_TREE [ROUNDS]`` — each tree a
checkout (e.g. ``git archive REV | tar -x -C /tmp/old``); every measurement runs in a subprocess
with that tree first on ``sys.path``, in the order old, new, old, new, … so load drifts hit both.
Prints one JSON line per measurement and a summary table (medians per revision) with the load.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = r"""
import json, os, sys, tempfile
from pathlib import Path
sys.path[:0] = [os.getcwd(), os.path.join(os.getcwd(), "bench"), os.path.join(os.getcwd(), "tests")]
import bench_gui
kind, data = sys.argv[1], Path(sys.argv[2])
if kind == "paint":
    print(json.dumps({"paint": bench_gui.measure_first_paint(3)}))
else:
    runs = Path(tempfile.mkdtemp())
    result = bench_gui.run_gui_training(data, runs, 0.001, probe=True) if kind == "gui" else \
        bench_gui.run_cli_training(data, runs)
    print(json.dumps({"gaps": result.get("gaps", []), "epochs": result["epochs"]}))
"""


def measure(tree: str, kind: str, data: Path) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=tree)
    out = subprocess.run([sys.executable, "-c", PROBE, kind, str(data)], cwd=tree, env=env, capture_output=True,
                         text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    old, new = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    sys.path.insert(0, str(Path(new) / "tests"))
    from imagegen import make_shapes_dataset

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CONVSCOPE_HOME"] = str(Path(tmp) / "home")
        data = make_shapes_dataset(Path(tmp) / "shapes", per_class=200, size=96)
        rows: dict[str, dict[str, list]] = {name: {"paint": [], "p99": [], "max": [], "epoch": []} for name in ("old", "new")}
        cli: list[float] = []
        for index in range(rounds):
            cli += measure(new, "cli", data)["epochs"][1:]
            for name, tree in (("old", old), ("new", new)) if index % 2 == 0 else (("new", new), ("old", old)):
                paint = measure(tree, "paint", data)["paint"]
                gui = measure(tree, "gui", data)
                gaps = sorted(gui["gaps"])
                rows[name]["paint"] += paint
                rows[name]["p99"].append(gaps[int(0.99 * (len(gaps) - 1))])
                rows[name]["max"].append(gaps[-1])
                rows[name]["epoch"] += gui["epochs"][1:]
                print(json.dumps({"round": index, "rev": name, "paint": paint, "p99": rows[name]["p99"][-1],
                                  "max": gaps[-1], "epochs": gui["epochs"], "load": os.getloadavg()}), flush=True)
    print("| revision | first paint median (s) | timer gap p99 (ms) | max gap (ms) | GUI epoch median (s) | CLI epoch median (s) |")
    print("|---|---|---|---|---|---|")
    for name in ("old", "new"):
        r = rows[name]
        print(f"| {name} | {statistics.median(r['paint']):.2f} | {statistics.median(r['p99']):.1f} | "
              f"{statistics.median(r['max']):.1f} | {statistics.median(r['epoch']):.2f} | {statistics.median(cli):.2f} |")
    print(f"load average at the end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
