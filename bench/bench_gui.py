"""GUI benchmarks → docs/benchmarks_gui.md (about 6–7 minutes on 2 CPU cores).

1. Responsiveness during training: a 10 ms QTimer on the GUI thread records the gaps between its
   ticks while the Training tab trains a small model (goal: max ≤ 50 ms, 99th percentile ≤ 20 ms).
   Measured with the app's GIL switch interval (1 ms, set in app.launcher) and with Python's default
   (5 ms). A watchdog thread (:class:`StallSampler`, part of the benchmark, not the app) samples the
   GUI thread's stack during every gap > 20 ms, and garbage collections are timed, so the report
   says what the GUI thread was doing in each stall.
2. Launch to first paint from the venv: a subprocess shows the window and exits on its first paint
   event (goal ≤ 0.5 s; median of 5).
3. Training throughput with the GUI attached against the same run from the CLI (goal ≥ 0.95):
   ``convscope train ... --json-events`` in a subprocess, same data, settings and seed, interleaved
   with the GUI runs (CLI, GUI, CLI, GUI, ...) so that load drifts hit both; mean epoch time of
   epochs 2..N from the EpochEnded events. The ratio uses the GUI runs without section 1's probe
   (the window as a user runs it); the probe's runs are reported beside it. The job process's
   start-up is reported separately (section 1), so fixed costs do not blur the comparison.

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_gui.py``
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

EPOCHS = int(os.environ.get("BENCH_GUI_EPOCHS", "10"))
PER_CLASS = 400
IMAGE_SIZE = 96
BATCH = 16


def _percentile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def measure_first_paint(runs: int = 5) -> list[float]:
    code = (
        "import time, sys\n"
        "from app.launcher import create_application\n"
        "app = create_application()\n"
        "from app.context import AppContext, AppSettings\n"
        "from PySide6.QtCore import QSettings\n"
        "from app.main_window import MainWindow\n"
        "ctx = AppContext(AppSettings(QSettings(sys.argv[1], QSettings.Format.IniFormat)))\n"
        "w = MainWindow(ctx, load_tf=False)\n"
        "def painted():\n"
        "    sys.stderr.write(f'PAINT {time.time()!r} TF={\"tensorflow\" in sys.modules}\\n'); app.exit(0)\n"
        "w.first_painted.connect(painted)\n"
        "w.resize(1280, 800); w.show(); app.exec()\n"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, CONVSCOPE_HOME=tmp, PYTHONPATH=str(ROOT))
        for _ in range(runs):
            t0 = time.time()
            proc = subprocess.run([sys.executable, "-c", code, os.path.join(tmp, "s.ini")], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=60)
            line = [ln for ln in proc.stderr.splitlines() if ln.startswith("PAINT")]
            if not line:
                raise RuntimeError(proc.stderr[-2000:])
            results.append(float(line[0].split()[1]) - t0)
    return results


STALL_MS = 20.0  # a gap longer than this is a stall: the watchdog records what the GUI thread did
SAMPLE_S = 0.002


def _frame_stack(frame, limit: int = 60) -> tuple:
    """(file, line, function) from the outermost frame to ``frame``; paths shortened to the
    project (app/…, bench/…) or the package (pyqtgraph/…, PySide6/…)."""
    out = []
    while frame is not None and len(out) < limit:
        code = frame.f_code
        name = code.co_filename.replace("\\", "/")
        for marker in ("/site-packages/", str(ROOT).replace("\\", "/") + "/", "/lib/python3"):
            if marker in name:
                name = name.split(marker, 1)[1]
                break
        out.append((name, frame.f_lineno, code.co_name))
        frame = frame.f_back
    return tuple(reversed(out))


class StallSampler:
    """A watchdog thread for the benchmark (not the app): every ``SAMPLE_S`` it looks at when the
    10 ms timer last ticked; while the timer has not ticked for more than ``STALL_MS`` it records
    the GUI thread's Python stack (``sys._current_frames()``), the other threads' innermost frames,
    and how late the watchdog itself woke (a late wake-up means it could not get the GIL or a core).
    Garbage collections on the GUI thread are timed through ``gc.callbacks``."""

    def __init__(self) -> None:
        import threading  # noqa: PLC0415

        self.main_id = threading.main_thread().ident
        self.last_tick: float | None = None
        self.stalls: dict[float, dict] = {}  # tick time before the stall -> samples
        self.collections: list[tuple[float, float, int]] = []  # start, ms, generation
        self._gc_start: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-stall-watchdog", daemon=True)

    def tick(self, now: float) -> None:
        self.last_tick = now

    def _gc(self, phase: str, info: dict) -> None:
        import threading  # noqa: PLC0415

        if threading.get_ident() != self.main_id:
            return
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif self._gc_start is not None:
            self.collections.append((self._gc_start, (time.perf_counter() - self._gc_start) * 1e3,
                                     info.get("generation", -1)))
            self._gc_start = None

    def start(self) -> None:
        import gc  # noqa: PLC0415

        gc.callbacks.append(self._gc)
        self._thread.start()

    def stop(self) -> None:
        import gc  # noqa: PLC0415

        self._stop.set()
        self._thread.join(2.0)
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)

    def _run(self) -> None:
        import threading  # noqa: PLC0415

        me = threading.get_ident()
        names = {}
        previous = time.perf_counter()
        while not self._stop.wait(SAMPLE_S):
            now = time.perf_counter()
            late_ms = (now - previous - SAMPLE_S) * 1e3
            previous = now
            last = self.last_tick
            if last is None or (now - last) * 1e3 <= STALL_MS:
                continue
            frames = sys._current_frames()
            stall = self.stalls.setdefault(last, {"samples": [], "others": [], "late_ms": 0.0})
            stall["samples"].append(_frame_stack(frames.get(self.main_id)))
            stall["late_ms"] = max(stall["late_ms"], late_ms)
            if len(names) != threading.active_count():
                names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in frames.items():
                if ident in (me, self.main_id) or frame is None:
                    continue
                leaf = _frame_stack(frame, limit=1)
                if leaf and leaf[-1][2] not in ("wait", "_wait_for_tstate_lock", "select", "poll", "_poll",
                                                "get", "accept", "_recv", "_recv_bytes", "recv_bytes"):
                    stall["others"].append(f"{names.get(ident, ident)}: {leaf[-1][0]}:{leaf[-1][2]}")


def _entry_and_leaf(stack: tuple) -> tuple[str, str]:
    """The slot Qt called (the first frame after the benchmark's event loop) and the innermost frame."""
    entry_at = None
    for index, (_name, _line, func) in enumerate(stack):
        if func == "wait" and _name.endswith("bench_gui.py"):
            entry_at = index + 1
    if not stack:
        return "(no Python frame)", ""
    if entry_at is None:
        entry_at = 0
    if entry_at >= len(stack):
        return "(in Qt/C++: painting, layout, or waiting for the GIL)", ""
    name, line, func = stack[entry_at]
    leaf = f"{stack[-1][0]}:{stack[-1][2]}"
    app_frames = [f for f in stack[entry_at + 1:-1] if f[0].startswith("app/")]
    if app_frames:  # the app's own code nearest to where the time went
        leaf = f"{app_frames[-1][0]}:{app_frames[-1][2]} → {leaf}"
    return f"{name}:{func}", leaf


def stall_report(result: dict, threshold_ms: float = STALL_MS) -> list[str]:
    """Markdown lines: each gap > ``threshold_ms`` with what the GUI thread was seen doing, and the
    top offenders over all of them (samples are ``SAMPLE_S`` apart)."""
    from collections import Counter  # noqa: PLC0415

    ticks = result["ticks"]
    sampler: StallSampler = result["sampler"]
    offenders: Counter = Counter()
    offender_stalls: Counter = Counter()
    offender_ms: Counter = Counter()
    rows = []
    for before, after in zip(ticks, ticks[1:]):
        gap = (after - before) * 1e3
        if gap <= threshold_ms:
            continue
        stall = sampler.stalls.get(before, {"samples": [], "others": [], "late_ms": 0.0})
        counts = Counter(_entry_and_leaf(s) for s in stall["samples"])
        gcs = [c for c in sampler.collections if before <= c[0] <= after]
        seen = set()
        for (entry, leaf), n in counts.items():
            offenders[(entry, leaf)] += n
            if entry not in seen:
                seen.add(entry)
                offender_stalls[entry] += 1
                offender_ms[entry] += gap
        what = "; ".join(f"{entry}{' → ' + leaf if leaf else ''} ×{n}" for (entry, leaf), n in counts.most_common(3))
        if gcs:
            what += "; gc " + ", ".join(f"gen {g} {ms:.0f} ms" for _, ms, g in gcs)
        others = Counter(stall["others"]).most_common(2)
        if others:
            what += "; other threads: " + ", ".join(f"{o} ×{n}" for o, n in others)
        rows.append(f"| {before - result['t0']:.2f} | {gap:.0f} | {stall['late_ms']:.0f} | {what or '—'} |")
    lines = ["| at s | gap ms | watchdog late ms | GUI thread seen in (slot → innermost frame ×samples) |",
             "|---|---|---|---|"] + (rows or ["| — | — | — | no gap over the threshold |"])
    if offenders:
        lines += ["", "Top offenders (samples 2 ms apart, summed over the gaps):", ""]
        for (entry, leaf), n in offenders.most_common(8):
            lines.append(f"- {entry}{' → ' + leaf if leaf else ''}: {n} samples")
    cols = sampler.collections
    if cols:
        worst = max(cols, key=lambda c: c[1])
        lines += ["", f"GUI-thread garbage collections during the run: {len(cols)}, "
                      f"{sum(c[1] for c in cols):.0f} ms in all, the longest {worst[1]:.1f} ms (generation {worst[2]})."]
    return lines


def _thread_cpu() -> dict[str, float]:
    """CPU seconds per thread of this process, by thread name (Linux /proc; empty elsewhere)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/comm", encoding="utf-8") as handle:
                name = handle.read().strip()
        except OSError:
            continue
        key = f"{name} ({tid})"
        out[key] = (int(fields[11]) + int(fields[12])) / tick
    return out


def run_gui_training(data: Path, runs_root: Path, switch_interval: float, probe: bool = True) -> dict:
    """One training run from the Training tab; ``probe``: the 10 ms timer and the stall watchdog
    run (off: the window alone, for the throughput comparison without the probe's own wake-ups)."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QSettings, QTimer

    from app.context import AppContext, AppSettings
    from app.launcher import create_application
    from app.main_window import MainWindow
    from engine.events import BatchProgress, EpochEnded, RunStarted

    app = create_application()  # noqa: F841 - the QApplication must stay referenced while the window runs
    sys.setswitchinterval(switch_interval)
    ini = runs_root / f"settings-{switch_interval}.ini"
    settings = AppSettings(QSettings(str(ini), QSettings.Format.IniFormat))
    settings.set_value("training/runs_root", str(runs_root))
    context = AppContext(settings)
    context.runner.show_dialogs = False
    window = MainWindow(context, load_tf=False)
    window.resize(1280, 800)
    window.show()

    def wait(signal, start=None, timeout=300_000):
        loop = QEventLoop()
        signal.connect(loop.quit)
        QTimer.singleShot(timeout, loop.quit)
        if start:
            start()
        loop.exec()

    if not context.tf_is_ready:
        wait(context.tf_ready, context.load_tf)
    dataset = window.show_tab("Dataset")
    wait(dataset.done, lambda: dataset.open_folder(str(data)))
    training = window.show_tab("Training")
    training.form.strategy_combo.setCurrentIndex(training.form.strategy_combo.findData("scratch"))
    training.form.preset_combo.setCurrentIndex(training.form.preset_combo.findData("book-scratch"))
    training.form.epochs_spin.setValue(EPOCHS)
    training.form.batch_spin.setValue(BATCH)
    training.form.size_spin.setValue(IMAGE_SIZE)
    training.form.limit_spin.setValue(0)
    training.form.augment_check.setChecked(False)
    training.smooth_check.setChecked(True)

    gaps: list[float] = []
    clock = QElapsedTimer()
    last = [None]
    epochs: list[float] = []
    marks: dict[str, float] = {}

    ticks: list[float] = []
    sampler = StallSampler()
    threads_before: dict[str, float] = {}

    def tick():
        now = clock.nsecsElapsed() / 1e6
        stamp = time.perf_counter()
        ticks.append(stamp)
        sampler.tick(stamp)
        if last[0] is not None:
            gaps.append(now - last[0])
        last[0] = now

    def on_event(event):
        now = time.perf_counter()
        marks.setdefault("first_event", now)
        if isinstance(event, RunStarted):
            marks.setdefault("run_started", now)
        if isinstance(event, BatchProgress):
            marks.setdefault("first_batch", now)
        if isinstance(event, EpochEnded):
            epochs.append(event.seconds)

    timer = QTimer()
    timer.setTimerType(__import__("PySide6.QtCore", fromlist=["Qt"]).Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    clock.start()
    started = time.perf_counter()
    handle = None

    def start():
        nonlocal handle
        marks["start"] = time.perf_counter()
        handle = training.start()
        handle.engine_event.connect(on_event)
        if probe:
            timer.start()
            sampler.start()
        marks["cpu0"] = time.process_time()
        threads_before.update(_thread_cpu())
        marks["none_refs"] = sys.getrefcount(None)

    wait(training.done, start)
    cpu = time.process_time() - marks.pop("cpu0")  # the GUI process's CPU time while training (all threads)
    threads_after = _thread_cpu()
    # PySide6 6.12 on Python 3.11 (None not immortal yet) drops references to None/True/False in
    # paint paths; at 0 the interpreter aborts (none_dealloc). Reported, not fixed here.
    none_refs = (marks.pop("none_refs"), sys.getrefcount(None))
    thread_cpu = sorted(((v - threads_before.get(k, 0.0), k) for k, v in threads_after.items()), reverse=True)[:6]
    timer.stop()
    if probe:
        sampler.stop()
    wall = time.perf_counter() - started
    redraws = training.curves.redraw_count
    events = training.event_count
    window.close()
    train_wall = time.perf_counter() - marks["start"]
    start_up = {k: v - marks["start"] for k, v in marks.items() if k != "start"}
    return {"gaps": gaps, "epochs": epochs, "wall": wall, "redraws": redraws, "events": events,
            "outcome": handle.outcome if handle else None, "start_up": start_up,
            "ticks": ticks, "t0": ticks[0] if ticks else 0.0, "sampler": sampler,
            "gui_cpu": cpu, "thread_cpu": thread_cpu, "none_refs": none_refs, "gui_cpu_share": cpu / train_wall if train_wall else float("nan")}


def measure_idle_gaps(seconds: float = 10.0) -> dict:
    """The same 10 ms timer with the window up and no job: the machine's own noise (other
    processes on the shared cores), to read the training rows against."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer

    from app.launcher import create_application

    create_application()
    gaps: list[float] = []
    clock = QElapsedTimer()
    last = [None]

    def tick():
        now = clock.nsecsElapsed() / 1e6
        if last[0] is not None:
            gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    clock.start()
    timer.start()
    loop.exec()
    timer.stop()
    return {"gaps": gaps, "events": 0, "redraws": 0}


def run_cli_training(data: Path, runs_root: Path) -> dict:
    """The same run from the CLI: ``convscope train ... --json-events`` in a subprocess (the same
    data, settings and seed as the Training tab's run); epoch times from its EpochEnded events."""
    import json  # noqa: PLC0415

    cmd = [sys.executable, "-c", "import sys; from app.launcher import main; sys.exit(main())",
           "train", "--data", str(data), "--strategy", "scratch", "--preset", "book-scratch",
           "--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--image-size", str(IMAGE_SIZE),
           "--no-augment", "--seed", "0", "--runs-root", str(runs_root), "--no-tensorboard", "--json-events"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    epochs: list[float] = []
    for line in proc.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "EpochEnded":
            epochs.append(float(event["seconds"]))
    if proc.returncode != 0 or not epochs:
        raise RuntimeError(f"convscope train failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return {"epochs": epochs, "wall": wall}


NOTES = [
    "## What caused the stalls (found with the watchdog above; fixed in app/)",
    "",
    "Before the fixes (quiet machine): p99 35 ms, max 138–184 ms, 5 gaps > 50 ms and dozens of gaps > 20 ms "
    "per run. The watchdog's samples put them in these places:",
    "",
    "1. **Redrawing the curves** (almost every gap of 21–45 ms): `GraphicsView.paintEvent` → pyqtgraph's "
    "`AxisItem.paint` / `boundingRect` / `generateDrawSpecs`. One redraw of the two plots took ~28 ms "
    "offscreen: ~21 ms of it the grid (pyqtgraph draws it as translucent full-length tick lines), most of the "
    "rest the axes regenerating their ticks because auto-range moved the range with every new point. Now: "
    "no grid, the ranges are set in steps (`nice_ceiling`: they change only when the data passes 1, 1.2, 1.5, "
    "2, 2.5 … × 10^k; the x axis spans the run's epochs from `RunStarted`), only changed series get `setData`, "
    "pens are made once, and nothing is drawn while the tab is hidden: ~3 ms a redraw.",
    "2. **A garbage collection of TensorFlow's objects**: the GUI-thread collector's generation-1 collection "
    "took 178 ms (TensorFlow is imported in the window's process for the interactive tools, and its "
    "objects were still young). Now `gc.freeze()` right after TensorFlow loads moves them to the permanent "
    "generation: collections during training take ~1 ms.",
    "3. **Reading run folders on the GUI thread**: `RunStarted` made the Training and Evaluation tabs re-read "
    "every run folder (and the ticked runs' histories). Now the Training tab lists its running run from the "
    "events and re-reads at the job's end; a hidden tab re-reads when it is shown. The one stall > 20 ms left "
    "at a run's end (~30 ms, `_on_done` → `refresh_runs` and the model pickers' `_list_run_dirs`) is that "
    "re-read: a candidate for a worker thread. The ~37 ms gap at 0.00 s is the Dataset tab's augmentation "
    "preview (TensorFlow ops on a job thread of the window's process) finishing as the run starts.",
    "",
    "Per-batch progress now leaves the job process at most every 500 ms (was 50 ms, then 200 ms), so the "
    "window draws two points a second between epochs; the window's process uses 2–3 % of one core while "
    "training (4–6 % at 200 ms, which cost the job ~4 % of its speed on two cores).",
    "",
    "Throughput: earlier runs of this benchmark showed single epochs slowed by ~1 s (about 1 in 3 steady GUI "
    "epochs, fewer in the CLI's), which dragged the mean ratio down to ~0.8 while the window's process used only "
    "4–6 % of one core. The same stall appeared in a plain in-process `train` call, so it was not the window's: "
    "py-spy's native stack during one showed the training thread in `RootDataset::Iterator::~Iterator`, waiting "
    "with the CPU idle for tf.data's autotuning thread while Keras dropped the previous epoch's iterator. "
    "ConvScope's datasets now run with that model off (`engine.data.pipeline.without_autotune_model`); "
    "`bench/bench_epoch_stalls.py` measures the change on its own (docs/benchmarks_epoch_stalls.md).",
    "",
    "Found on the way (now excluded by the dependency pin `pyside6-essentials<6.12`, guarded by "
    "tests/gui/test_qt_binding.py): with PySide6 6.12.0 on Python 3.11 every call of a `void` Qt method "
    "from Python (`setText`, `update`, `repaint`, pyqtgraph's painting) drops one reference to `None` "
    "(`sys.getrefcount(None)` falls by exactly 1 per call; Python 3.12+ has an immortal `None` and is not "
    "affected). When the count reaches 0 the interpreter aborts with `none_dealloc` — the shutdown crash noted "
    "at the end of this script, and a bare window crashes after ~5,000 such calls. With TensorFlow loaded "
    "`None` starts near 200,000 references and one training run of this benchmark used ~4,600 of them "
    "(`--quick gui` prints both numbers), so a long session would abort.",
    "",
]

# Interleaved so that drifts in the machine's load hit both sides alike: CLI, GUI, CLI, GUI, ...
# "gui": with the 10 ms timer and the stall watchdog (section 1); "gui-app": the window alone, as a user
# runs it — the throughput comparison (section 3) uses these, since the probe's own wake-ups take CPU.
SCHEDULE = [("cli", None), ("gui", 0.001), ("cli", None), ("gui-app", 0.001), ("cli", None), ("gui", 0.005),
            ("cli", None), ("gui-app", 0.001), ("cli", None)]


def quick(schedule: str) -> int:
    """``--quick gui,cli,...``: only the given runs, results on stderr, docs untouched (for
    looking into a stall while working on it)."""
    from imagegen import make_shapes_dataset

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["CONVSCOPE_HOME"] = str(tmp / "home")
        data = make_shapes_dataset(tmp / "shapes", per_class=PER_CLASS, size=IMAGE_SIZE)
        (tmp / "runs").mkdir()
        (tmp / "cli-runs").mkdir()
        for kind in schedule.split(","):
            if kind == "cli":
                result = run_cli_training(data, tmp / "cli-runs")
                sys.stderr.write(f"CLI epochs {result['epochs']}\n")
                continue
            result = run_gui_training(data, tmp / "runs", 0.001, probe=kind not in ("gui-noprobe", "gui-app"))
            g = result["gaps"] or [float("nan")]
            sys.stderr.write(f"GUI epochs {result['epochs']}; p99 {_percentile(g, 0.99):.1f} ms, max {max(g):.1f} ms, "
                             f"gaps > 20 ms {sum(1 for x in g if x > 20)}, > 50 ms {sum(1 for x in g if x > 50)}, "
                             f"events {result['events']}, redraws {result['redraws']}, GUI process CPU {result['gui_cpu']:.2f} s "
                             f"({100 * result['gui_cpu_share']:.0f} % of one core)\n")
            sys.stderr.write(f"references to None: {result['none_refs'][0]} before the run, "
                             f"{result['none_refs'][1]} after\n")
            sys.stderr.write("GUI-process threads by CPU while training: " + ", ".join(
                f"{name} {sec:.2f} s" for sec, name in result["thread_cpu"]) + "\n")
            sys.stderr.write("\n".join(stall_report(result)) + "\n")
        sys.stderr.flush()
    return 0


def main() -> int:
    from imagegen import make_shapes_dataset

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["CONVSCOPE_HOME"] = str(tmp / "home")
        data = make_shapes_dataset(tmp / "shapes", per_class=PER_CLASS, size=IMAGE_SIZE)
        runs = tmp / "runs"  # the Training tab's runs folder (it lists only its own runs)
        runs.mkdir()
        cli_runs = tmp / "cli-runs"
        cli_runs.mkdir()
        paint = measure_first_paint()
        results: list[tuple[str, float | None, dict]] = []
        for kind, interval in SCHEDULE:
            if kind == "cli":
                results.append((kind, None, run_cli_training(data, cli_runs)))
            else:
                results.append((kind, interval, run_gui_training(data, runs, interval, probe=kind == "gui")))
            sys.stderr.write(f"{kind} {interval}: epochs {results[-1][2]['epochs']}\n")
        idle = measure_idle_gaps()
        load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3

    def gap_row(label, result):
        g = result["gaps"]
        return (f"| {label} | {len(g)} | {statistics.median(g):.1f} | {_percentile(g, 0.99):.1f} | {max(g):.1f} | "
                f"{sum(1 for x in g if x > 20)} | {sum(1 for x in g if x > 50)} | {result['events']} | "
                f"{result['redraws']} | {cpu_cell(result)} |")

    def cpu_cell(result):
        return f"{100 * result['gui_cpu_share']:.0f} %" if "gui_cpu_share" in result else "—"

    def start_row(label, result):
        su = result["start_up"]

        def cell(key):
            return f"{su[key]:.2f}" if key in su else "—"

        first_epoch = f"{result['epochs'][0]:.2f}" if result["epochs"] else "—"
        return f"| {label} | {cell('first_event')} | {cell('run_started')} | {cell('first_batch')} | {first_epoch} |"

    def steady(epochs):
        return statistics.mean(epochs[1:]) if len(epochs) > 1 else float("nan")

    gui_label = {}
    counter: dict[float, int] = {}
    for kind, interval, result in results:
        if kind != "cli":
            key = (kind, interval)
            counter[key] = counter.get(key, 0) + 1
            what = "window only" if kind == "gui-app" else f"{interval * 1000:.0f} ms switch interval, with probe"
            gui_label[id(result)] = f"GUI, {what}, run {counter[key]}"
    gui_results = [r for k, _, r in results if k == "gui"]  # with the probe: section 1
    app_results = [r for k, _, r in results if k == "gui-app"]  # the window alone: section 3
    cli_results = [r for k, _, r in results if k == "cli"]
    cli_s = statistics.mean(steady(r["epochs"]) for r in cli_results)
    gui_s = statistics.mean(steady(r["epochs"]) for r in app_results)
    probe_s = statistics.mean(steady(r["epochs"]) for r in gui_results)
    ratio = cli_s / gui_s if gui_s else float("nan")
    cli_med = statistics.median(e for r in cli_results for e in r["epochs"][1:])
    gui_med = statistics.median(e for r in app_results for e in r["epochs"][1:])

    def pair_ratios(wanted: str) -> list[float]:
        """Each GUI run of kind ``wanted`` against the CLI runs right before and after it."""
        out = []
        for index, (kind, _, result) in enumerate(results):
            if kind == wanted:
                around = [r for k, _, r in results[max(0, index - 1):index + 2] if k == "cli"]
                out.append(statistics.mean(steady(r["epochs"]) for r in around) / steady(result["epochs"]))
        return out

    lines = [
        "# GUI benchmarks",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores (shared), Python {platform.python_version()}, "
        "Qt offscreen platform. Produced by `bench/bench_gui.py`.",
        "",
        "## 1. Responsiveness while training",
        "",
        f"A 10 ms `QTimer` (PreciseTimer) on the GUI thread; the Training tab trains book-scratch on "
        f"{2 * PER_CLASS} generated {IMAGE_SIZE} px images, batch {BATCH}, {EPOCHS} epochs, smoothing on. "
        "Goal: max gap ≤ 50 ms, 99th percentile ≤ 20 ms. The GUI runs are interleaved with CLI runs "
        "(section 3) in this order: " + ", ".join(
            "CLI" if k == "cli" else ("GUI (window only)" if k == "gui-app" else f"GUI {i * 1000:.0f} ms")
            for k, i, _ in results) + ".",
        "",
        "| run | ticks | median ms | p99 ms | max ms | gaps > 20 ms | gaps > 50 ms | events delivered | redraws "
        "| GUI process CPU (of one core) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[gap_row(gui_label[id(r)], r) for r in gui_results],
        gap_row("no job (idle window, 10 s): the machine's noise", idle),
        "",
        f"Load average when the run ended: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) on "
        f"{os.cpu_count()} cores shared with other work: compare the training rows with the idle row.",
        "",
        "Training runs in a child process (`engine/worker.py`, multiprocessing \"spawn\"), so TensorFlow's "
        "Python-side work holds that process's GIL, not the GUI's.",
        "",
        "### What the GUI thread did during the gaps > 20 ms",
        "",
        f"A watchdog thread in the benchmark samples the GUI thread's Python stack every {SAMPLE_S * 1000:.0f} ms "
        f"while the timer has not ticked for more than {STALL_MS:.0f} ms; 'slot' is the first Python frame "
        "Qt called, 'watchdog late' how late the watchdog itself woke (it could not get the GIL or a core).",
        "",
    ]
    for result in gui_results:
        lines += [f"**{gui_label[id(result)]}**", ""] + stall_report(result) + [""]
    lines += [
        "### Job-process start-up (fixed cost per training run)",
        "",
        "Seconds from pressing Start to: the first event from the child, the run folder being made "
        "(`RunStarted`), the first batch's progress; and epoch 1's own time (includes tracing):",
        "",
        "| run | first event | RunStarted | first batch | epoch 1 |",
        "|---|---|---|---|---|",
        *[start_row(gui_label[id(r)], r) for r in gui_results],
        *[f"| CLI run {n} (whole process: {r['wall']:.1f} s) | — | — | — | {r['epochs'][0]:.2f} |"
          for n, r in enumerate(cli_results, start=1)],
        "",
        "## 2. Launch to first paint",
        "",
        f"From `subprocess` start to the main window's first paint event (no TensorFlow imported yet), "
        f"5 runs: median **{statistics.median(paint):.2f} s** (min {min(paint):.2f}, max {max(paint):.2f}). Goal ≤ 0.5 s.",
        "",
        "## 3. Training throughput with the GUI attached",
        "",
        "The same run from the CLI (`convscope train --data … --strategy scratch --preset book-scratch "
        f"--epochs {EPOCHS} --batch-size {BATCH} --image-size {IMAGE_SIZE} --no-augment --seed 0 --no-tensorboard "
        "--json-events`, epoch times from its `EpochEnded` events) and from the Training tab, interleaved. "
        "The throughput ratio compares the CLI with the window as a user runs it (\"window only\"); the runs "
        "\"with probe\" also carry section 1's 10 ms timer and 2 ms watchdog thread, whose wake-ups take CPU from "
        "the job on two cores, and are shown for comparison. Mean epoch time of epochs 2..N (epoch 1 includes "
        "tracing):",
        "",
        "| run (in order) | epoch times (s) | mean of epochs 2..N |",
        "|---|---|---|",
    ]
    n_cli = 0
    for kind, _, result in results:
        if kind == "cli":
            n_cli += 1
            label = f"CLI run {n_cli}"
        else:
            label = gui_label[id(result)]
        lines.append(f"| {label} | {', '.join(f'{s:.2f}' for s in result['epochs'])} | {steady(result['epochs']):.3f} s |")
    lines += [
        "",
        f"Mean of the CLI runs {cli_s:.3f} s, of the GUI runs (window only) {gui_s:.3f} s: throughput ratio "
        f"GUI / CLI **{ratio:.3f}** (goal ≥ 0.95); each such GUI run against the CLI runs beside it: "
        + ", ".join(f"{r:.3f}" for r in pair_ratios("gui-app")) + ". "
        f"Median steady epoch (all runs of a side): CLI {cli_med:.3f} s, GUI {gui_med:.3f} s, ratio "
        f"**{cli_med / gui_med:.3f}**. With the probe running as well: mean {probe_s:.3f} s, ratio "
        f"{cli_s / probe_s:.3f} (per run: " + ", ".join(f"{r:.3f}" for r in pair_ratios("gui")) + ").",
        "",
        *NOTES,
    ]
    out = ROOT / "docs" / "benchmarks_gui.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    if sys.stderr is not None:
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()
    return 0


if __name__ == "__main__":
    code = quick(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[1] == "--quick" else main()
    # Skip interpreter finalization: with TensorFlow, Keras and Qt all loaded in this one process,
    # the final garbage collection at shutdown crashed once (none_dealloc in a C extension) after
    # the results were written. The results are flushed above.
    os._exit(code)
