"""The study (issue 11): five rungs on one frozen split, paired statistics, resume, bad input."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imagegen import make_shapes_dataset
from test_train_tinybase import tiny_base  # noqa: F401 (fixture)

from engine.errors import DatasetError
from engine.study import stats
from engine.study.config import StudyConfig
from engine.study.job import run

TESTS = Path(__file__).parent


# --------------------------------------------------------------------------- statistics
def test_mcnemar_matches_a_hand_computed_table():
    # 8 images only a gets right, 2 only b, 30 both, 5 neither: exact two-sided p = 2 * P(X <= 2),
    # X ~ Binomial(10, 1/2) = 2 * (1 + 10 + 45) / 1024
    a = [True] * 8 + [False] * 2 + [True] * 30 + [False] * 5
    b = [False] * 8 + [True] * 2 + [True] * 30 + [False] * 5
    test = stats.mcnemar("a", a, "b", b)
    assert (test.only_a_right, test.only_b_right, test.both_right, test.both_wrong) == (8, 2, 30, 5)
    assert math.isclose(test.p_value, 2 * (1 + 10 + 45) / 1024)
    assert test.verdict == "not distinguishable at this test size"
    # 10 discordant pairs all for a: p = 2 / 1024 < 0.05
    clear = stats.mcnemar("a", [True] * 10 + [True] * 20, "b", [False] * 10 + [True] * 20)
    assert math.isclose(clear.p_value, 2 / 1024) and clear.verdict == "better"
    assert stats.mcnemar("b", [False] * 10, "a", [True] * 10).verdict == "worse"
    assert stats.mcnemar("a", [True, False], "b", [True, False]).p_value == 1.0  # no discordant pair


def test_accuracy_interval_is_wilsons():
    n, k, z = 50, 45, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = stats.accuracy_interval(k, n)
    assert math.isclose(low, centre - half, rel_tol=1e-6) and math.isclose(high, centre + half, rel_tol=1e-6)


# --------------------------------------------------------------------------- the quick profile
def test_quick_profile_follows_the_demo_data_measurements():
    """docs/DEMO_DATA.md: the convnet at 64 px, the base at 96 px on average-pooled features (one pooling
    for rungs 3-5: rung 5 continues rung 4's model), the mild augmentation (the book's hurts on aligned
    photos); every rung a valid training config."""
    from engine.study.config import RUNGS, rung_settings
    from engine.train.config import TrainConfig

    cfg = StudyConfig(data=str(TESTS), profile="quick")
    settings = {rung: rung_settings(cfg, rung) for rung in RUNGS}
    assert {settings[r]["image_size"] for r in ("scratch", "scratch+aug")} == {64}
    transfer = [settings[r] for r in ("features", "features-augmented", "finetune")]
    assert {s["image_size"] for s in transfer} == {96} and {s["head_pooling"] for s in transfer} == {"avg"}
    augmented = [s for s in settings.values() if s["augment"]]
    assert [s["strategy"] for s in augmented] == ["scratch", "features-augmented", "finetune"]
    assert {s["augmentation"] for s in augmented} == {"mild"}
    for rung, s in settings.items():
        TrainConfig(data=str(TESTS), **s).validate()
        assert s["patience"] > 0, rung  # early stopping on validation picks the epoch


# --------------------------------------------------------------------------- the ladder
@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_dataset(tmp_path_factory.mktemp("study") / "shapes", per_class=12, size=40)


def _study(data, out, **kw) -> StudyConfig:
    settings = dict(data=str(data), base="tiny-base", out=str(out), max_epochs=1, image_size=48, batch_size=8,
                    seed=2)
    settings.update(kw)
    return StudyConfig(**settings)


def _split_lines(folder: Path) -> dict[str, list[str]]:
    return {name: (folder / f"{name}.txt").read_text().splitlines() for name in ("train", "validation", "test")}


@pytest.mark.slow
def test_tiny_study_runs_five_rungs_on_one_frozen_split(shapes, tmp_path, tiny_base):
    events = []
    result = run(_study(shapes, tmp_path / "study"), events.append)
    folder = Path(result.folder)
    study = json.loads((folder / "study.json").read_text())
    assert result.status == "finished"
    assert [r["name"] for r in study["rungs"]] == ["scratch", "scratch+aug", "features", "features-augmented",
                                                   "finetune"]
    assert all(r["status"] == "finished" for r in study["rungs"])
    frozen = _split_lines(folder / "split")
    for rung in study["rungs"]:
        run_dir = folder / rung["run_dir"]
        assert _split_lines(run_dir / "split") == frozen  # the same test images for every rung
        assert rung["test_images"] == len(frozen["test"])
        low, high = rung["ci95"]
        assert low <= rung["test_accuracy"] <= high
        assert set(rung["per_class_f1"]) == {"circle", "square"}
    configs = {r["name"]: json.loads((folder / r["run_dir"] / "config.json").read_text()) for r in study["rungs"]}
    assert configs["scratch"]["augment"] is False and configs["scratch+aug"]["augment"] is True
    assert Path(configs["finetune"]["head_from_run"]) == folder / study["rungs"][3]["run_dir"]
    # the fine-tuning recipe chosen on validation (docs/study.md); the head rungs keep the book's RMSprop
    assert (configs["finetune"]["optimizer"], configs["finetune"]["learning_rate"]) == ("adam-cosine", 3e-4)
    assert {configs[r]["optimizer"] for r in ("scratch", "features", "features-augmented")} == {"rmsprop"}
    assert study["rungs"][2]["trained_parameters"] < study["rungs"][0]["trained_parameters"]  # a head only
    from engine.models.loading import load_keras_file

    head = load_keras_file(folder / study["rungs"][2]["run_dir"] / "head_last.keras")
    assert study["rungs"][2]["trained_parameters"] == sum(int(np.prod(w.shape)) for w in head.trainable_weights)
    assert study["rungs"][4]["trained_parameters"] > study["rungs"][3]["trained_parameters"]  # the base's top too
    kinds = [(c["a"], c["b"], c["kind"]) for c in study["comparisons"]]
    assert ("scratch+aug", "scratch", "previous") in kinds and ("finetune", "features-augmented", "previous") in kinds
    assert study["dataset"]["fingerprint"] and study["versions"]["scipy"]
    summary = (folder / "summary.md").read_text()
    assert summary.count("| finished |") == 5 and "McNemar" in summary
    names = [type(e).__name__ for e in events]
    assert names.count("StudyRungStarted") == 5 and names.count("StudyRungFinished") == 5
    report = (folder / "report.html").read_text()
    for section in ("Results per rung", "What this dataset says", "Paired significance", "Validation accuracy",
                    "Confusion matrices", "disagree on most"):
        assert section in report
    assert "http:" not in report and "https:" not in report and "<script" not in report  # self-contained
    assert report.count("<polyline") == 5 and report.count("src='data:image/png;base64,") >= 1
    assert report.count("<img class='cam'") >= 3 * 8  # the transfer rungs' Grad-CAM of the 8 images, at least
    for rung in study["rungs"]:  # test-time augmentation: its own figures, paired with the plain ones
        tta, plain = rung["tta"], rung["test_accuracy"]
        test = tta["against_plain"]
        assert tta["test_accuracy"] == pytest.approx((test["both_right"] + test["only_a_right"]) / rung["test_images"])
        assert plain == pytest.approx((test["both_right"] + test["only_b_right"]) / rung["test_images"])
    assert "with flip TTA" in summary and "with flip TTA" in report


@pytest.mark.slow
def test_resume_after_sigkill_skips_finished_rungs(shapes, tmp_path, tiny_base):
    out = tmp_path / "study"
    # the CLI as a user runs it, with the tiny base and tiny limits (one epoch per rung, 48 px)
    code = ("import functools, sys, test_train_tinybase as t; t.register(); import engine.study.config as c; "
            "c.StudyConfig = functools.partial(c.StudyConfig, max_epochs=1, image_size=48, batch_size=8); "
            "from engine.cli import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])}
    child = subprocess.Popen([sys.executable, "-c", code, "study", "--data", str(shapes), "--base", "tiny-base",
                              "--out", str(out), "--json-events"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    finished = 0
    try:
        for line in child.stdout:
            if json.loads(line)["event"] == "StudyRungFinished":
                finished += 1
                if finished == 2:
                    child.send_signal(signal.SIGKILL)  # in the middle of the study, as a crash would
                    break
    finally:
        child.kill()
        child.wait(timeout=60)
    assert finished == 2
    done = {name: (out / "rungs" / name / "history.csv").stat().st_mtime_ns for name in ("1-scratch", "2-scratch-aug")}
    events = []
    result = run(StudyConfig(resume=str(out)), events.append)
    assert result.status == "finished"
    started = {e.name: e.status for e in events if type(e).__name__ == "StudyRungStarted"}
    assert started["scratch"] == started["scratch+aug"] == "finished earlier"
    assert started["features"] in ("training", "resuming", "evaluating")
    for name, mtime in done.items():  # not retrained: their files were not rewritten
        assert (out / "rungs" / name / "history.csv").stat().st_mtime_ns == mtime
    study = json.loads((out / "study.json").read_text())
    assert all(r["status"] == "finished" for r in study["rungs"])


def test_resumed_rung_starts_with_its_curve_so_far(shapes, tmp_path, tiny_base):
    """A rung interrupted after its first epoch: on --resume its StudyRungStarted carries the validation
    curve of the epochs it had, so a listener (the Study tab) draws them before the new ones arrive."""
    from engine.events import CancelToken, EpochEnded, StudyRungStarted

    out = tmp_path / "study"
    token = CancelToken()

    def cancel_after_first_epoch(event):
        if isinstance(event, EpochEnded):
            token.cancel()

    assert run(_study(shapes, out, max_epochs=3), cancel_after_first_epoch, token).status == "cancelled"
    study = json.loads((out / "study.json").read_text())
    assert study["rungs"][0]["status"] == "interrupted"
    with open(out / "rungs" / "1-scratch" / "history.csv") as handle:
        so_far = [float(row["val_accuracy"]) for row in csv.DictReader(handle)]
    assert len(so_far) == 1
    resumed, token = [], CancelToken()

    def stop_at_the_resumed_rung(event):
        if isinstance(event, StudyRungStarted):
            resumed.append(event)
            token.cancel()  # nothing more is needed of this run

    run(StudyConfig(resume=str(out)), stop_at_the_resumed_rung, token)
    assert [(e.name, e.status) for e in resumed] == [("scratch", "resuming")]
    assert resumed[0].val_accuracy == pytest.approx(so_far, abs=1e-4)


# --------------------------------------------------------------------------- bad input
def test_one_class_is_refused(tmp_path, tiny_base):
    data = make_shapes_dataset(tmp_path / "one", per_class=8, classes=("circle",))
    with pytest.raises(DatasetError, match="class"):
        run(_study(data, tmp_path / "study"))
    assert not (tmp_path / "study").exists()  # refused before anything was written


def test_too_small_for_a_stratified_split_names_the_minimum(tmp_path, tiny_base):
    data = make_shapes_dataset(tmp_path / "tiny", per_class=2)
    with pytest.raises(DatasetError) as info:
        run(_study(data, tmp_path / "study"))
    assert "too small for a stratified split" in str(info.value) and "at least 4 images per class" in str(info.value)


def test_resumed_study_whose_dataset_changed_is_refused(shapes, tmp_path, tiny_base):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(shapes, data)
    out = tmp_path / "study"
    from engine.study import job

    from engine.data.split import save_split

    split, scan_result = job._split_once(_study(data, out), lambda e: None, None)
    folder = job._new_folder(_study(data, out))
    save_split(split, folder / job.SPLIT)
    job._save(folder, job._new_study(_study(data, out), folder, split, scan_result))  # a study, interrupted
    victim = sorted((data / "circle").iterdir())[0]
    victim.write_bytes((data / "square" / sorted(os.listdir(data / "square"))[0]).read_bytes())
    with pytest.raises(DatasetError, match="changed since the study began"):
        run(StudyConfig(resume=str(out)))


@pytest.mark.slow
def test_base_without_weights_skips_the_transfer_rungs_with_the_reason(shapes, tmp_path):
    from test_train_tinybase import build_tiny_base  # noqa: F401 (the builder the spec names)

    from engine.bases.registry import BaseSpec, WeightsStatus, register_base, unregister_base

    register_base(BaseSpec(
        name="tiny-unweighted", label="tiny base without weights", builder="test_train_tinybase:build_tiny_base",
        input_size=32, min_input_size=32, last_conv_layer="conv2", finetune_from="conv2", weights_source="none",
        weights_status=lambda: WeightsStatus(False, "no weights file in this test"), model_name="tiny_base"))
    events = []
    try:
        result = run(_study(shapes, tmp_path / "study", base="tiny-unweighted"), events.append)
    finally:
        unregister_base("tiny-unweighted")
    status = {r["name"]: (r["status"], r.get("reason", "")) for r in result.rungs}
    assert status["scratch"][0] == status["scratch+aug"][0] == "finished"
    for name in ("features", "features-augmented", "finetune"):
        assert status[name] == ("skipped", "base 'tiny-unweighted' has no pretrained weights here "
                                           "(no weights file in this test)")
    assert not (Path(result.folder) / "rungs" / "3-features").exists()  # nothing trained from random weights
    # the Study tab shows the reason live, from the same events `convscope study --json-events` prints
    from engine.events import StudyRungStarted

    skipped = {e.name: e.reason for e in events if isinstance(e, StudyRungStarted) and e.status == "skipped"}
    assert skipped == {name: status[name][1] for name in ("features", "features-augmented", "finetune")}


def _synthetic_study(accuracies: list[float], verdicts: list[str]) -> dict:
    names = ["scratch", "scratch+aug", "features", "features-augmented", "finetune"]
    rungs = [{"index": i + 1, "name": n, "status": "finished", "test_accuracy": a, "ci95": [a - 0.02, a + 0.02],
              "test_images": 500} for i, (n, a) in enumerate(zip(names, accuracies))]
    comparisons = [{"kind": "previous", "a": names[i + 1], "b": names[i], "p_value": 0.01 if v != "not distinguishable"
                    else 0.4, "verdict": v if v != "not distinguishable" else "not distinguishable at this test size"}
                   for i, v in enumerate(verdicts)]
    return {"rungs": rungs, "comparisons": comparisons}


def test_the_paragraph_comes_from_the_measured_numbers():
    from engine.study.report import narrative

    following = narrative(_synthetic_study([0.7, 0.8, 0.9, 0.93, 0.95], ["better"] * 4))
    assert following[0].startswith("Augmentation (with dropout) against the plain convnet: 0.700 → 0.800 (+10.0 points")
    assert following[0].endswith("as in the book.")
    hurting = narrative(_synthetic_study([0.89, 0.85, 0.9, 0.93, 0.92],
                                         ["worse", "better", "not distinguishable", "not distinguishable"]))
    assert "0.890 → 0.850 (-4.0 points" in hurting[0] and "unlike the book's +11 points" in hurting[0]
    assert "not distinguishable" in hurting[3] and hurting[-1].startswith("Best rung: features-augmented at 0.930")


@pytest.mark.slow
def test_disk_full_mid_study_keeps_finished_rungs_and_resumes(shapes, tmp_path, tiny_base, monkeypatch):
    import errno

    from engine import atomic
    from engine.errors import DiskFullError
    from engine.models.loading import load_keras_file

    real_save_with = atomic.save_with

    def full_disk_for_rung_3(target, save, suffix=None):
        if "3-features" in str(target):
            def no_space(tmp):
                raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
            return real_save_with(target, no_space, suffix)
        return real_save_with(target, save, suffix)

    monkeypatch.setattr(atomic, "save_with", full_disk_for_rung_3)
    out = tmp_path / "study"
    with pytest.raises(DiskFullError):
        run(_study(shapes, out))
    study = json.loads((out / "study.json").read_text())
    assert [r["status"] for r in study["rungs"][:2]] == ["finished", "finished"]
    for name in ("1-scratch", "2-scratch-aug"):  # finished rungs intact and loadable
        assert load_keras_file(out / "rungs" / name / "best.keras") is not None
    monkeypatch.setattr(atomic, "save_with", real_save_with)  # space freed
    result = run(StudyConfig(resume=str(out)))
    assert result.status == "finished" and all(r["status"] == "finished" for r in result.rungs)


def test_full_profile_sizes_and_recipe():
    from engine.study.config import rung_settings, scratch_size

    assert scratch_size(28) == 64  # 28-px images are not upscaled to the book's 150 px
    assert scratch_size(100) == 100 and scratch_size(400) == 150 and scratch_size(None) == 150
    full = StudyConfig(data="x", profile="full")
    settings = {rung: rung_settings(full, rung, median_side=28) for rung in
                ("scratch", "scratch+aug", "features", "features-augmented", "finetune")}
    assert settings["scratch"]["image_size"] == settings["scratch+aug"]["image_size"] == 64
    assert all("image_size" not in settings[r] for r in ("features", "features-augmented", "finetune"))  # base's own
    assert len({settings[r]["head_pooling"] for r in ("features", "features-augmented", "finetune")}) == 1
    assert rung_settings(StudyConfig(data="x", profile="full", image_size=80), "scratch", 28)["image_size"] == 80


def test_tta_column_is_shown_beside_the_plain_accuracy_or_says_off():
    from engine.study.job import summary_markdown

    study = _synthetic_study([0.9, 0.91, 0.92, 0.93, 0.94], ["better"] * 4)
    study.update(dataset={"root": "d", "split_counts": {}}, settings={"profile": "full", "base": "b"}, comparisons=[])
    for rung in study["rungs"]:
        rung.update(per_class_f1={"a": 0.9}, test_loss=0.3, epochs=3, trained_parameters=10)
    study["rungs"][4]["tta"] = {"test_accuracy": 0.956, "ci95": [0.94, 0.97],
                                "against_plain": {"p_value": 0.031}}
    rows = [line for line in summary_markdown(study).splitlines() if line.startswith("| 4 ") or
            line.startswith("| 5 ")]
    assert "| 0.940 (0.920–0.960) | 0.956 (0.940–0.970; p 0.031) |" in rows[1]
    assert "| 0.930 (0.910–0.950) | off |" in rows[0]
