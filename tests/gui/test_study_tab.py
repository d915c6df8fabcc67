"""The Study tab: one click once a dataset is loaded, its table filled from a real study's events."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_study_tab_fills_its_table_from_a_real_study(context, qtbot, shapes, errors):
    from app.tabs.dataset import DatasetTab
    from app.tabs.study import StudyTab

    tab = StudyTab(context)
    qtbot.addWidget(tab)
    tab.resize(1100, 520)
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
    for row in range(5):
        assert tab.cell(row, 1) == "finished"
        accuracy = float(tab.cell(row, 2))
        low, high = (float(v) for v in tab.cell(row, 3).split("–"))
        assert low <= accuracy <= high
    assert "p = " in tab.cell(1, 7)  # rung 2 against rung 1, McNemar
    assert tab.report_button.isEnabled() and os.path.isfile(tab.report_path())
    if os.environ.get("CONVSCOPE_SCREENSHOT_DIR"):
        tab.grab().save(os.path.join(os.environ["CONVSCOPE_SCREENSHOT_DIR"], "study_tab.png"))
