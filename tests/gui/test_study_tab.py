"""The Study tab: one click once a dataset is loaded; its table, overlaid validation curves and side-by-side
confusion matrices filled from a real study's events, the same again from the study's folder, and "Open
report" handing the study's report.html to the system's browser."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]

RUNGS = ("scratch", "scratch+aug", "features", "features-augmented", "finetune")


def _assert_shows(tab, study: dict) -> None:
    """The tab shows what study.json records: each rung's row, curve and confusion matrix, and the
    flip-TTA figure in its own column beside (never instead of) the plain accuracy."""
    from app.tabs.study import PREVIOUS_COLUMN, TTA_COLUMN

    for row, entry in enumerate(study["rungs"]):
        assert entry["status"] == "finished"
        assert tab.cell(row, 1) == "finished"
        accuracy = float(tab.cell(row, 2))
        assert accuracy == pytest.approx(entry["test_accuracy"], abs=5e-4)
        low, high = (float(v) for v in tab.cell(row, 3).split("–"))
        assert low <= accuracy <= high
        assert entry["val_accuracy"] and len(entry["val_accuracy"]) == entry["epochs"]
        assert tab.curves.curve(entry["name"]) == pytest.approx(entry["val_accuracy"], abs=1e-6)
        assert tab.confusions.matrix(entry["name"]) == entry["confusion_matrix"]
        assert sum(map(sum, entry["confusion_matrix"])) == entry["test_images"]
        assert entry["tta"], "the study runs with flip TTA by default"
        assert tab.cell(row, TTA_COLUMN).startswith(f"{entry['tta']['test_accuracy']:.3f} (")
    assert list(tab.confusions.tables) == list(RUNGS)  # side by side, in ladder order
    assert "p = " in tab.cell(1, PREVIOUS_COLUMN)  # rung 2 against rung 1, McNemar


def test_study_tab_fills_table_curves_and_matrices_from_a_real_study(context, qtbot, shapes, errors, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    from app.tabs.dataset import DatasetTab
    from app.tabs.study import StudyTab

    tab = StudyTab(context)
    qtbot.addWidget(tab)
    tab.resize(1100, 720)
    tab.show()
    assert not tab.start_button.isEnabled()  # no dataset yet
    dataset_tab = DatasetTab(context)
    qtbot.addWidget(dataset_tab)
    with qtbot.waitSignal(dataset_tab.done, timeout=30_000):
        dataset_tab.open_folder(str(shapes))
    assert tab.start_button.isEnabled()
    tab.job_target = "study_child:run_tiny"
    with qtbot.waitSignal(tab.done, timeout=600_000):
        tab.start_button.click()
        assert tab.cancel_button.isEnabled() and not tab.start_button.isEnabled()
    assert not errors, errors
    folder = Path(tab.folder)
    study = json.loads((folder / "study.json").read_text())
    _assert_shows(tab, study)

    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    assert tab.report_button.isEnabled()
    tab.report_button.click()
    assert opened == [str(folder / "report.html")] and os.path.isfile(opened[0])

    # a finished study opened from its folder shows the same
    reopened = StudyTab(context)
    qtbot.addWidget(reopened)
    assert not reopened.report_button.isEnabled()
    reopened.show_study(str(folder))
    _assert_shows(reopened, study)
    assert reopened.report_button.isEnabled()
    if os.environ.get("CONVSCOPE_SCREENSHOT_DIR"):
        tab.grab().save(os.path.join(os.environ["CONVSCOPE_SCREENSHOT_DIR"], "study_tab.png"))


def test_opening_a_folder_that_is_not_a_study_is_refused_naming_it(context, qtbot, tmp_path):
    from app.tabs.study import StudyTab
    from engine.errors import InvalidSetting

    tab = StudyTab(context)
    qtbot.addWidget(tab)
    with pytest.raises(InvalidSetting, match="study.json"):
        tab.show_study(str(tmp_path))
    assert tab.folder is None and not tab.report_button.isEnabled()


def test_resumed_study_shows_its_earlier_rungs_at_once_then_fills_live(context, qtbot, shapes, errors):
    """Cancel a study in the tab after two rungs, then "Resume study": the two finished rungs are in the
    table, curves and matrices (from the resumed job's own events) before the next rung starts, and the
    other three fill as they finish."""
    from app.tabs.dataset import DatasetTab
    from app.tabs.study import PREVIOUS_COLUMN, StudyTab

    tab = StudyTab(context)
    qtbot.addWidget(tab)
    tab.show()
    dataset_tab = DatasetTab(context)
    qtbot.addWidget(dataset_tab)
    with qtbot.waitSignal(dataset_tab.done, timeout=30_000):
        dataset_tab.open_folder(str(shapes))
    tab.job_target = "study_child:run_tiny"
    assert not tab.resume_button.isEnabled()  # nothing to resume yet
    finished = []

    def cancel_after_two(event):
        if type(event).__name__ == "StudyRungFinished":
            finished.append(event.name)
            if len(finished) == 2:
                tab.cancel_button.click()

    with qtbot.waitSignal(tab.done, timeout=600_000):
        tab.start_button.click()
        tab._job.engine_event.connect(cancel_after_two)
    assert finished[:2] == ["scratch", "scratch+aug"]
    folder = Path(tab.folder)
    before = json.loads((folder / "study.json").read_text())
    done_before = [r["name"] for r in before["rungs"] if r["status"] == "finished"]
    assert done_before[:2] == ["scratch", "scratch+aug"] and len(done_before) < len(RUNGS)
    assert tab.resume_button.isEnabled()

    seen = {}

    def at_first_new_rung(event):
        if type(event).__name__ == "StudyRungStarted" and event.status != "finished earlier" and not seen:
            seen["statuses"] = [tab.cell(row, 1) for row in range(len(RUNGS))]
            seen["curves"] = {name: tab.curves.curve(name) for name in done_before}
            seen["matrices"] = {name: tab.confusions.matrix(name) for name in tab.confusions.tables}
            seen["previous"] = tab.cell(1, PREVIOUS_COLUMN)

    with qtbot.waitSignal(tab.done, timeout=600_000):
        tab.resume_button.click()
        assert not tab.resume_button.isEnabled() and tab.cancel_button.isEnabled()
        tab._job.engine_event.connect(at_first_new_rung)
    assert not errors, errors
    assert seen, "the resumed study trained no rung"
    entries = {r["name"]: r for r in before["rungs"]}
    for row, name in enumerate(done_before):
        assert seen["statuses"][row] == "finished"
        assert seen["curves"][name] == pytest.approx(entries[name]["val_accuracy"], abs=1e-6)
        assert seen["matrices"][name] == entries[name]["confusion_matrix"]
    assert set(seen["matrices"]) == set(done_before)
    assert "p = " in seen["previous"]  # rung 2 against rung 1, from study.json's comparisons
    study = json.loads((folder / "study.json").read_text())
    _assert_shows(tab, study)  # and the rest filled live
    assert not tab.resume_button.isEnabled()  # finished: nothing left to resume


def test_a_resuming_rung_draws_its_earlier_epochs_then_the_new_ones(context, qtbot):
    """The engine's StudyRungStarted("resuming") carries the curve of the rung's epochs before the
    interruption; the tab draws it and the live epochs continue it."""
    from app.tabs.study import StudyTab
    from engine.events import EpochEnded, StudyRungStarted

    tab = StudyTab(context)
    qtbot.addWidget(tab)
    tab._on_event(StudyRungStarted(2, 5, "scratch+aug", "/s/rungs/2-scratch-aug", status="resuming",
                                   val_accuracy=[0.5, 0.625]))
    assert tab.cell(1, 1) == "resuming" and tab.curves.curve("scratch+aug") == [0.5, 0.625]
    tab._on_event(EpochEnded(3, 4, {"val_accuracy": 0.75}, 1.0))
    assert tab.curves.curve("scratch+aug") == [0.5, 0.625, 0.75]


def test_a_skipped_rung_shows_its_reason_live(context, qtbot):
    """A base without weights skips the transfer rungs; the engine's StudyRungStarted("skipped")
    carries the reason (tests/test_study.py) and the tab shows it in the rung's row at once."""
    from app.tabs.study import StudyTab
    from engine.events import StudyRungStarted

    tab = StudyTab(context)
    qtbot.addWidget(tab)
    reason = "base 'tiny-unweighted' has no pretrained weights here (no weights file)"
    tab._on_event(StudyRungStarted(3, 5, "features", "/s/rungs/3-features", status="skipped", reason=reason))
    assert tab.cell(2, 1) == "skipped" and tab.cell(2, 2) == reason
