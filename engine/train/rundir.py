"""Run folders: one folder per training run, everything written atomically.

Layout::

    <runs>/2026-11-27_1530_scratch_book-scratch/
        config.json      TrainConfig (resolved) + "classes", "image_size", "num_classes"
        manifest.json    Python/TF/Keras/numpy versions, seed, dataset fingerprint, counts
        split/           the exact train/validation/test file lists (engine.data.split.save_split)
        state.json       status (running/finished/cancelled/failed), epochs done, phase, best value
        history.csv      one row per finished epoch: epoch, phase, seconds, every metric
        events.jsonl     the run's events (not the per-batch ones), one JSON object per line
        best.keras       full model of the best validation loss
        last.keras       full model after the last finished epoch (optimizer included, for resume)
        logs/            TensorBoard logs
        metrics.json     after evaluation (engine.train.evaluate)

No TensorFlow is imported here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import atomic
from engine.errors import InvalidSetting
from engine.events import Event, Sink

CONFIG = "config.json"
MANIFEST = "manifest.json"
STATE = "state.json"
HISTORY = "history.csv"
EVENTS = "events.jsonl"
METRICS = "metrics.json"
BEST = "best.keras"
LAST = "last.keras"
SPLIT = "split"
LOGS = "logs"


def new_run_dir(root: str | Path, strategy: str, model_name: str, now: float | None = None) -> Path:
    """Create ``root/<date>_<time>_<strategy>_<model>`` (with ``-2``, ``-3``... if it exists)."""
    root = Path(root)
    stamp = time.strftime("%Y-%m-%d_%H%M", time.localtime(now))
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{strategy}_{model_name}")
    candidate = root / f"{stamp}_{safe}"
    n = 2
    while True:
        try:
            return atomic.make_folder(candidate)
        except FileExistsError:
            candidate = root / f"{stamp}_{safe}-{n}"
            n += 1


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def require_run_dir(path: str | Path) -> Path:
    path = Path(path)
    if not is_run_dir(path):
        raise InvalidSetting(f"'{path}' is not a ConvScope run folder (no {CONFIG})",
                             "give a folder written by `convscope train`")
    return path


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def read_config(run_dir: str | Path) -> dict[str, Any]:
    run_dir = require_run_dir(run_dir)
    data = read_json(run_dir / CONFIG)
    if not isinstance(data, dict):
        raise InvalidSetting(f"'{run_dir / CONFIG}' is unreadable", "the run folder is damaged; train again")
    return data


def read_state(run_dir: str | Path) -> dict[str, Any]:
    return read_json(Path(run_dir) / STATE, {}) or {}


def write_state(run_dir: str | Path, state: dict[str, Any]) -> None:
    atomic.write_json(Path(run_dir) / STATE, state)


def best_or_last(run_dir: str | Path) -> Path:
    """The run's model to reuse: best.keras when it exists, else last.keras."""
    run_dir = Path(run_dir)
    return run_dir / BEST if (run_dir / BEST).exists() else run_dir / LAST


# --------------------------------------------------------------------------- history
def write_history(run_dir: str | Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite history.csv (atomically) from rows of ``{"epoch", "phase", "seconds", metrics...}``."""
    columns: list[str] = ["epoch", "phase", "seconds"]
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    atomic.write_text(Path(run_dir) / HISTORY, buffer.getvalue())


def read_history_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            row: dict[str, Any] = {}
            for key, value in raw.items():
                if key == "phase":
                    row[key] = value
                elif key == "epoch":
                    row[key] = int(value)
                else:
                    row[key] = float(value) if value not in ("", None) else float("nan")
            rows.append(row)
    return rows


def read_history(run_dir: str | Path) -> dict[str, list[float]]:
    """history.csv as columns: ``{"epoch": [1, 2, ...], "loss": [...], "val_accuracy": [...], ...}``
    (numbers only; the ``phase`` column is in :func:`read_history_rows`)."""
    rows = read_history_rows(run_dir)
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "phase":
                columns.setdefault(key, []).append(value)
    return columns


# --------------------------------------------------------------------------- state + history of a running run
class RunState:
    """What a run has done so far; shared by the phases of one run and persisted in state.json."""

    def __init__(self, run_dir, rows: list[dict[str, Any]], state: dict[str, Any]) -> None:
        self.run_dir = run_dir
        self.rows = rows
        self.state = state

    @property
    def epochs_done(self) -> int:
        return len(self.rows)

    @property
    def best(self) -> float:
        return float(self.state.get("best_value", math.inf))

    def save(self) -> None:
        write_history(self.run_dir, self.rows)
        self.state["epochs_done"] = self.epochs_done
        write_state(self.run_dir, self.state)


# --------------------------------------------------------------------------- events
class EventLog:
    """A sink that forwards every event and records the run's events in events.jsonl.

    Per-batch progress is forwarded but not recorded. The file is rewritten atomically on each
    recorded event (a run records a few events per epoch)."""

    def __init__(self, run_dir: str | Path, emit: Sink, skip: tuple[type, ...] = ()) -> None:
        self.path = Path(run_dir) / EVENTS
        self.emit = emit
        self.skip = skip
        self.lines: list[str] = []
        if self.path.is_file():
            self.lines = [line for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def __call__(self, event: Event) -> None:
        if not isinstance(event, self.skip):
            record = event.to_dict()
            record["time"] = round(time.time(), 3)
            self.lines.append(json.dumps(record, default=str))
            atomic.write_text(self.path, "\n".join(self.lines) + "\n")
        self.emit(event)


# --------------------------------------------------------------------------- listing
@dataclass(frozen=True)
class RunInfo:
    path: str
    name: str
    strategy: str
    model: str
    status: str
    epochs_done: int
    epochs: int
    classes: list[str] = field(default_factory=list)
    best_val_accuracy: float | None = None
    best_val_loss: float | None = None
    test_accuracy: float | None = None
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_info(run_dir: str | Path) -> RunInfo:
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    state = read_state(run_dir)
    history = read_history(run_dir)
    metrics = read_json(run_dir / METRICS, {}) or {}
    val_acc = [v for v in history.get("val_accuracy", []) if v == v]
    val_loss = [v for v in history.get("val_loss", []) if v == v]
    strategy = config.get("strategy", "?")
    model = config.get("base") if strategy != "scratch" else config.get("preset")
    return RunInfo(
        path=str(run_dir),
        name=run_dir.name,
        strategy=strategy,
        model=str(model),
        status=state.get("status", "unknown"),
        epochs_done=len(history.get("epoch", [])),
        epochs=int(state.get("epochs_planned", config.get("epochs", 0)) or 0),
        classes=list(config.get("classes", [])),
        best_val_accuracy=max(val_acc) if val_acc else None,
        best_val_loss=min(val_loss) if val_loss else None,
        test_accuracy=metrics.get("accuracy"),
        created=config.get("created", ""),
    )


def list_runs(root: str | Path | None = None) -> list[RunInfo]:
    """Every run folder directly under ``root`` (default: the user's runs folder), newest first."""
    if root is None:
        from engine.paths import default_runs_dir  # noqa: PLC0415

        root = default_runs_dir()
    root = Path(root)
    if not root.is_dir():
        raise InvalidSetting(f"runs folder '{root}' does not exist", "give an existing folder with --root")
    runs = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and is_run_dir(child):
            try:
                runs.append(run_info(child))
            except InvalidSetting:
                continue
    runs.sort(key=lambda r: (r.created, r.name), reverse=True)
    return runs
