"""Benchmark the study: one study (``--profile quick|full``) on the demo data, wall time per rung and in all.

Runs ``engine.study.job.run`` exactly as ``convscope study --data DATA --profile P --out DIR`` does
(same process, same events) and times it from the events: before the ladder (scan, the frozen
split), each rung from its ``StudyRungStarted`` to its ``StudyRungFinished`` (training and the
evaluation on the test images), and after it (summary.md and report.html with the Grad-CAM grid).
Writes the profile's section of docs/benchmarks_study.md (the other profile's section is kept) with
the machine header of bench/machine.py, the goal (quick ≤ 5 min, full ≤ 15 min on 2 cores) and each
rung's test accuracy. One run: the figure is absolute wall time, disturbed by whatever else runs.

Run: ``.venv/bin/python bench/bench_study.py --profile quick`` (``--out DIR`` keeps the study).
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import machine  # noqa: E402 - bench/machine.py
from engine import atomic  # noqa: E402
from engine.events import StudyRungFinished, StudyRungStarted  # noqa: E402

DATA = ROOT / "resources" / "demo" / "pullover-vs-coat"
GOALS_S = {"quick": 5 * 60, "full": 15 * 60}
PAGE = ROOT / "docs" / "benchmarks_study.md"
TITLE = "# Study wall time per rung (bench/bench_study.py)"


class Clock:
    """Seconds since the start at each rung's start and end, from the study's own events."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.started: dict[str, float] = {}
        self.finished: dict[str, float] = {}

    def __call__(self, event) -> None:
        now = time.perf_counter() - self.start
        if isinstance(event, StudyRungStarted):
            self.started.setdefault(event.name, now)
        elif isinstance(event, StudyRungFinished):
            self.finished[event.name] = now


def section(profile: str, data: Path, study: dict, clock: Clock, total: float, load_start: str) -> list[str]:
    goal = GOALS_S[profile]
    rungs = study["rungs"]
    first = min(clock.started.values(), default=total)
    last = max(clock.finished.values(), default=total)
    lines = [f"<!-- profile:{profile} -->", f"## `{profile}` profile", "",
             f"`convscope study --data {data.relative_to(ROOT) if data.is_relative_to(ROOT) else data} "
             f"--profile {profile}`: **{total:.0f} s in all** against the goal of ≤ {goal // 60} min on 2 cores "
             f"({'met' if total <= goal else 'NOT met'} here); {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"load average at the start {load_start}.", "",
             "| step | wall s | of which training s | epochs | test accuracy (95% CI) |", "|---|---|---|---|---|",
             f"| scan and frozen split | {first:.0f} | | | |"]
    for r in rungs:
        name = r["name"]
        if name in clock.started and name in clock.finished:
            wall = f"{clock.finished[name] - clock.started[name]:.0f}"
        else:
            wall = "–"
        if r["status"] == "finished":
            accuracy = f"{r['test_accuracy']:.3f} ({r['ci95'][0]:.3f}–{r['ci95'][1]:.3f})"
            lines.append(f"| {r['index']}. {name} | {wall} | {r.get('train_seconds', 0):.0f} | {r['epochs']} | "
                         f"{accuracy} |")
        else:
            lines.append(f"| {r['index']}. {name} | {wall} | | | {r['status']} {r.get('reason', '')} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    lines += [f"| summary.md and report.html (Grad-CAM grid) | {total - last:.0f} | | | |", "",
              f"Peak resident memory of the process: {peak:.2f} GiB.", ""]
    lines += machine.header(f"bench/bench_study.py --profile {profile}")
    lines += ["", f"<!-- /profile:{profile} -->"]
    return lines


def write_page(profile: str, lines: list[str]) -> None:
    """Replace ``profile``'s section of the page, keeping the other profile's."""
    old = PAGE.read_text(encoding="utf-8") if PAGE.is_file() else TITLE + "\n"
    block = "\n".join(lines)
    pattern = re.compile(rf"<!-- profile:{profile} -->.*?<!-- /profile:{profile} -->", re.S)
    text = pattern.sub(lambda _match: block, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + block
    atomic.write_text(PAGE, text.rstrip("\n") + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=tuple(GOALS_S), default="quick")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, help="study folder to create (default: a temporary one, removed)")
    args = parser.parse_args()
    from engine.study.config import StudyConfig  # noqa: PLC0415
    from engine.study.job import read_study, run  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="bench_study_") as scratch:
        out = args.out or Path(scratch) / "study"
        load_start = machine.load()
        clock = Clock()
        result = run(StudyConfig(data=str(args.data), profile=args.profile, out=str(out)), clock)
        total = time.perf_counter() - clock.start
        lines = section(args.profile, args.data.resolve(), read_study(result.folder), clock, total, load_start)
    write_page(args.profile, lines)
    print("\n".join(lines))
    return 0 if result.status == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
