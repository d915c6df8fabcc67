"""The study job: ``run(config, emit, cancel)`` trains the five rungs on one frozen split and compares them.

Study folder::

    <study>/
        study.json     settings, versions, dataset fingerprint, the split's counts, every rung's
                       status and results, the paired comparisons (rewritten atomically after each step)
        split/         the frozen split every rung trains and is tested on
        rungs/1-scratch/ ... rungs/5-finetune/   ordinary run folders (Evaluation, Grad-CAM, resume work on them)
        summary.md     the comparison table in Markdown
        report.html    the self-contained report (engine.study.report)

Resume (``StudyConfig(resume=folder)``): the dataset is scanned again and refused when its
fingerprint differs; finished rungs are skipped (their folders are not touched); an interrupted
rung continues after its last finished epoch (``engine.train.lifecycle.resume``); rung 3's cached
features come back from the feature cache. A base without weights skips the three transfer rungs
with the reason (never trained from random weights and reported as transfer learning).
"""

from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import __version__, atomic
from engine.errors import DatasetError, InvalidSetting
from engine.events import CancelToken, JobCancelled, Sink, Status, StudyRungFinished, StudyRungStarted, discard
from engine.study import stats
from engine.study.report import tta_cell
from engine.study.config import RUNGS, TRANSFER_RUNGS, StudyConfig, rung_folder_name, rung_settings
from engine.train import rundir

STUDY_FILE = "study.json"
SPLIT = "split"
SUMMARY = "summary.md"
MIN_PER_CLASS = 4  # at least one image per class in each of train, validation and test (and one spare)


@dataclass
class StudyResult:
    folder: str
    status: str  # "finished" | "cancelled"
    rungs: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)


def run(config: StudyConfig, emit: Sink = discard, cancel: CancelToken | None = None) -> StudyResult:
    config.validate()
    if config.resume:
        folder = Path(config.resume)
        study = read_study(folder)
        cfg = dataclasses.replace(StudyConfig.from_dict(study["settings"]), resume=str(folder))
        split, scan_result = _load_frozen_split(cfg, folder, study, emit, cancel)
    else:
        cfg = config
        split, scan_result = _split_once(cfg, emit, cancel)  # bad data refused before a folder exists
        folder = _new_folder(cfg)
        from engine.data.split import save_split  # noqa: PLC0415

        save_split(split, folder / SPLIT)
        study = _new_study(cfg, folder, split, scan_result)
        _save(folder, study)
    return _ladder(cfg, folder, study, (split, scan_result), emit, cancel)


def read_study(folder: str | Path) -> dict[str, Any]:
    """The study.json of ``folder`` (what the Study tab shows and ``--resume`` continues)."""
    path = Path(folder) / STUDY_FILE
    study = rundir.read_json(path)
    if not isinstance(study, dict) or "settings" not in study or "rungs" not in study:
        raise InvalidSetting(f"'{path}' is missing or unreadable", "open a folder `convscope study` wrote, "
                                                                 "or start a new study")
    return study


def resumable(folder: str | Path) -> bool:
    """Whether ``folder`` holds a study with a rung still to train or evaluate (``--resume`` continues it)."""
    try:
        study = read_study(folder)
    except InvalidSetting:
        return False
    return any(entry.get("status") not in ("finished", "skipped") for entry in study["rungs"])


# =========================================================================== the split
def _train_config(cfg: StudyConfig):
    from engine.train.config import TrainConfig  # noqa: PLC0415

    return TrainConfig(data=cfg.data, seed=cfg.seed, max_per_class=cfg.max_per_class)


def _scan(cfg: StudyConfig, emit: Sink, cancel):
    from engine.train.lifecycle import scan_data  # noqa: PLC0415

    return scan_data(_train_config(cfg), emit, cancel)


def _split_once(cfg: StudyConfig, emit: Sink, cancel):
    """Scan, check every class can be split, and split once (seeded, stratified)."""
    from engine.train.lifecycle import prepare_split  # noqa: PLC0415

    scan_result = _scan(cfg, emit, cancel)
    if len(scan_result.classes) >= 2:  # fewer: prepare_split names the class-folder problem
        totals = {name: 0 for name in scan_result.classes}
        for items in scan_result.files.values():
            for _, label in items:
                totals[scan_result.classes[label]] += 1
        name, count = min(totals.items(), key=lambda item: item[1])
        if count < MIN_PER_CLASS:
            raise DatasetError(f"'{cfg.data}' is too small for a stratified split: class '{name}' has {count} "
                               f"image(s)", f"give at least {MIN_PER_CLASS} images per class (a few hundred "
                               "for a comparison that can tell rungs apart)")
    return prepare_split(_train_config(cfg), emit, cancel, scan_result=scan_result)


def _load_frozen_split(cfg: StudyConfig, folder: Path, study: dict, emit: Sink, cancel):
    from engine.data.split import load_split  # noqa: PLC0415

    scan_result = _scan(cfg, emit, cancel)
    recorded = study.get("dataset", {}).get("fingerprint")
    if recorded != scan_result.fingerprint:
        raise DatasetError(f"the dataset '{cfg.data}' changed since the study began (fingerprint "
                           f"{scan_result.fingerprint} is not the recorded {recorded})",
                           "restore the original images, or start a new study")
    return load_split(folder / SPLIT), scan_result


# =========================================================================== study.json
def _new_folder(cfg: StudyConfig) -> Path:
    if cfg.out:
        return atomic.make_folder(cfg.out, exist_ok=True)
    from engine.paths import default_runs_dir  # noqa: PLC0415

    return rundir.new_run_dir(default_runs_dir(), "study", cfg.profile)


def _versions() -> dict[str, str]:
    import numpy as np  # noqa: PLC0415
    import scipy  # noqa: PLC0415

    from engine.tf_runtime import keras, tf  # noqa: PLC0415

    return {"convscope": __version__, "python": platform.python_version(), "tensorflow": tf().__version__,
            "keras": keras().__version__, "numpy": np.__version__, "scipy": scipy.__version__}


def _new_study(cfg: StudyConfig, folder: Path, split, scan_result) -> dict[str, Any]:
    return {
        "settings": cfg.to_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "versions": _versions(),
        "dataset": {"root": str(scan_result.root), "fingerprint": scan_result.fingerprint,
                    "classes": list(split.classes), "split_counts": split.counts(),
                    "median_side": median_side(split.train)},
        "rungs": [{"index": i, "name": name, "run_dir": str(Path("rungs") / rung_folder_name(i, name)),
                   "status": "pending"} for i, name in enumerate(RUNGS, start=1)],
        "comparisons": [],
    }


def median_side(items, sample: int = 200) -> int | None:
    """The median shorter side of (an evenly spaced sample of) the images, read from their headers."""
    from PIL import Image  # noqa: PLC0415

    step = max(1, len(items) // sample)
    sides = []
    for path, _ in items[::step]:
        try:
            with Image.open(path) as image:
                sides.append(min(image.size))
        except OSError:  # an unreadable file is the scan's and the pipeline's to report
            continue
    return int(sorted(sides)[len(sides) // 2]) if sides else None


def _save(folder: Path, study: dict[str, Any]) -> None:
    atomic.write_json(folder / STUDY_FILE, study)


# =========================================================================== the ladder
def _ladder(cfg: StudyConfig, folder: Path, study: dict, prepared, emit: Sink, cancel) -> StudyResult:
    from engine.bases.registry import get_base  # noqa: PLC0415

    weights = get_base(cfg.base).weights_status()
    total = len(study["rungs"])
    for entry in study["rungs"]:
        index, name = entry["index"], entry["name"]
        run_dir = folder / entry["run_dir"]
        if entry["status"] == "finished":  # its result again: a listener shows the whole study from the events
            emit(StudyRungStarted(index, total, name, str(run_dir), status="finished earlier"))
            emit(StudyRungFinished(index, total, name, result=dict(entry), comparisons=list(study["comparisons"])))
            continue
        if name in TRANSFER_RUNGS and not weights.present:
            entry.update(status="skipped", reason=f"base '{cfg.base}' has no pretrained weights here "
                                                  f"({weights.source})")
            _save(folder, study)
            emit(StudyRungStarted(index, total, name, str(run_dir), status="skipped", reason=entry["reason"]))
            continue
        try:
            if cancel is not None:
                cancel.raise_if_cancelled()
            if _train_rung(cfg, folder, study, entry, prepared, emit, cancel, total) == "cancelled":
                raise JobCancelled()
            results = _rung_results(run_dir, emit, cancel, cfg.tta)
        except JobCancelled:  # in training or in its evaluation: --resume trains on or evaluates it
            entry["status"] = "interrupted" if rundir.is_run_dir(run_dir) else "pending"
            _save(folder, study)
            return StudyResult(str(folder), "cancelled", study["rungs"], study["comparisons"])
        entry.update(status="finished", **results)
        study["comparisons"] = _comparisons(folder, study)
        _save(folder, study)
        emit(StudyRungFinished(index, total, name, result=dict(entry), comparisons=list(study["comparisons"])))
    _write_summary(folder, study)
    return StudyResult(str(folder), "finished", study["rungs"], study["comparisons"])


def _train_rung(cfg, folder: Path, study: dict, entry: dict, prepared, emit: Sink, cancel, total: int) -> str:
    from engine.train.config import TrainConfig  # noqa: PLC0415
    from engine.train.lifecycle import resume, train  # noqa: PLC0415

    index, name = entry["index"], entry["name"]
    run_dir = folder / entry["run_dir"]
    state = rundir.read_state(run_dir) if rundir.is_run_dir(run_dir) else {}
    started = time.perf_counter()
    if state.get("status") == "finished":
        emit(StudyRungStarted(index, total, name, str(run_dir), status="evaluating"))
        return "finished"
    if rundir.is_run_dir(run_dir):
        so_far = [round(float(v), 4) for v in rundir.read_history(run_dir).get("val_accuracy", [])]
        emit(StudyRungStarted(index, total, name, str(run_dir), status="resuming", val_accuracy=so_far))
        result = resume(run_dir, emit, cancel)
    else:
        settings = rung_settings(cfg, name, study["dataset"].get("median_side"))
        if name == "finetune":
            settings["head_from_run"] = str(folder / study["rungs"][3]["run_dir"])
        entry["status"] = "running"
        _save(folder, study)
        emit(StudyRungStarted(index, total, name, str(run_dir), status="training"))
        config = TrainConfig(data=cfg.data, out=str(run_dir), **settings)
        result = train(config, emit, cancel, prepared=prepared)
    entry["train_seconds"] = round(entry.get("train_seconds", 0.0) + time.perf_counter() - started, 1)
    return result.status


def _rung_results(run_dir: Path, emit: Sink, cancel, tta: bool = False) -> dict[str, Any]:
    from engine.train.evaluate import evaluate  # noqa: PLC0415

    result = evaluate(run_dir, emit=emit, cancel=cancel, flip_average=tta)
    plain = [p["true"] == p["predicted"] for p in result.predictions]
    low, high = stats.accuracy_interval(sum(plain), result.count)
    history = rundir.read_history(run_dir)
    extra: dict[str, Any] = {}
    if result.flip_averaged is not None:  # its own columns; the plain figures stay the rung's result
        averaged = [p["true"] == p["predicted_flip_averaged"] for p in result.predictions]
        extra["tta"] = {"method": "horizontal flip, scores averaged",
                        "test_accuracy": result.flip_averaged["accuracy"],
                        "ci95": list(stats.accuracy_interval(sum(averaged), result.count)),
                        "test_loss": result.flip_averaged["loss"],
                        "against_plain": stats.mcnemar("flip-averaged", averaged, "plain", plain).to_dict()}
    return {**extra, "test_accuracy": result.accuracy, "ci95": [low, high], "test_loss": result.loss,
            "per_class_f1": stats.per_class_f1(result.per_class), "test_images": result.count,
            "epochs": len(history.get("epoch", [])),
            "val_accuracy": [round(float(v), 4) for v in history.get("val_accuracy", [])],  # the curve
            "epoch_seconds": round(sum(history.get("seconds", [])), 1),
            # the evaluated model's trainable weights: for cached features the base inside it is
            # frozen, so the head's (the base never ran in training); no second load of the model
            "trained_parameters": result.trainable_parameters,
            "confusion_matrix": result.confusion_matrix, "classes": list(result.classes)}


def _correctness(run_dir: Path) -> dict[str, bool]:
    metrics = rundir.read_json(run_dir / rundir.METRICS, {}) or {}
    return {p["path"]: p["true"] == p["predicted"] for p in metrics.get("predictions", [])}


def _comparisons(folder: Path, study: dict) -> list[dict[str, Any]]:
    """Each finished rung against the previous finished one and against the best (McNemar)."""
    done = [r for r in study["rungs"] if r["status"] == "finished"]
    if len(done) < 2:
        return []
    marks = {r["name"]: _correctness(folder / r["run_dir"]) for r in done}
    paths = sorted(set.intersection(*(set(m) for m in marks.values())))
    best = max(done, key=lambda r: r.get("test_accuracy", 0.0))
    out = []
    for previous, current in zip(done, done[1:]):
        test = stats.mcnemar(current["name"], [marks[current["name"]][p] for p in paths],
                             previous["name"], [marks[previous["name"]][p] for p in paths])
        out.append({"kind": "previous", **test.to_dict()})
    for rung in done:
        if rung is best:
            continue
        test = stats.mcnemar(rung["name"], [marks[rung["name"]][p] for p in paths],
                             best["name"], [marks[best["name"]][p] for p in paths])
        out.append({"kind": "best", **test.to_dict()})
    return out


# =========================================================================== summary.md
def summary_markdown(study: dict[str, Any]) -> str:
    """The comparison as Markdown: one row per rung, then the paired tests."""
    lines = [f"# Study on {study['dataset']['root']}", "",
             f"Profile {study['settings']['profile']}, base {study['settings']['base']}, "
             f"{study['dataset']['split_counts']} images per subset; every rung tested on the same images.", "",
             "| # | rung | status | test accuracy (95% CI) | with flip TTA (95% CI; McNemar p vs plain) | "
             "per-class F1 | test loss | epochs | train s | trained params |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in study["rungs"]:
        if r["status"] != "finished":
            lines.append(f"| {r['index']} | {r['name']} | {r['status']} {r.get('reason', '')} | | | | | | | |")
            continue
        f1 = ", ".join(f"{k} {v:.3f}" for k, v in r["per_class_f1"].items())
        lines.append(f"| {r['index']} | {r['name']} | finished | {r['test_accuracy']:.3f} "
                     f"({r['ci95'][0]:.3f}–{r['ci95'][1]:.3f}) | {tta_cell(r)} | {f1} | {r['test_loss']:.3f} | "
                     f"{r['epochs']} | {r.get('train_seconds', 0):.0f} | {r['trained_parameters']:,} |")
    if study["comparisons"]:
        lines += ["", "| rung | against | only it right | only other right | McNemar p | verdict |",
                  "|---|---|---|---|---|---|"]
        for c in study["comparisons"]:
            lines.append(f"| {c['a']} | {c['b']} ({c['kind']}) | {c['only_a_right']} | {c['only_b_right']} | "
                         f"{c['p_value']:.3g} | {c['verdict']} |")
    return "\n".join(lines) + "\n"


def _write_summary(folder: Path, study: dict[str, Any]) -> None:
    from engine.study.report import write_report  # noqa: PLC0415

    atomic.write_text(folder / SUMMARY, summary_markdown(study))
    write_report(folder, study)
