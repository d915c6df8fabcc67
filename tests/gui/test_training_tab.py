"""The Training tab driven as a user would: pick a strategy, start, watch curves, cancel, compare runs."""

from __future__ import annotations

import os
import time

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture
def scanned(tf_context, qtbot, shapes):
    """A context with TF ready and the shapes dataset scanned (through the Dataset tab)."""
    from app.tabs.dataset import DatasetTab

    dataset_tab = DatasetTab(tf_context)
    qtbot.addWidget(dataset_tab)
    with qtbot.waitSignal(dataset_tab.done, timeout=30_000):
        dataset_tab.open_folder(str(shapes))
    return tf_context


@pytest.fixture
def tab(scanned, qtbot):
    from app.tabs.training import TrainingTab

    widget = TrainingTab(scanned)
    qtbot.addWidget(widget)
    widget.resize(1280, 760)
    widget.show()
    widget.strategy_combo.setCurrentIndex(widget.strategy_combo.findData("scratch"))
    widget.size_spin.setValue(48)
    widget.batch_spin.setValue(8)
    widget.augment_check.setChecked(False)
    return widget


def test_form_follows_the_strategy(tab):
    tab.strategy_combo.setCurrentIndex(tab.strategy_combo.findData("features"))
    assert not tab.augment_check.isEnabled() and not tab.augment_check.isChecked()
    assert not tab.preset_combo.isVisibleTo(tab) and tab.base_combo.isVisibleTo(tab)
    assert tab.base_combo.count() >= 1 and tab.base_status.text()
    tab.strategy_combo.setCurrentIndex(tab.strategy_combo.findData("finetune"))
    assert tab.finetune_combo.isVisibleTo(tab) and tab.augment_check.isChecked()
    tab.strategy_combo.setCurrentIndex(tab.strategy_combo.findData("scratch"))
    assert tab.preset_combo.isVisibleTo(tab)


def test_training_draws_curves_and_lists_the_run(tab, qtbot, scanned):
    tab.epochs_spin.setValue(2)
    finished = []
    scanned.run_finished.connect(finished.append)
    with qtbot.waitSignal(tab.done, timeout=180_000):
        tab.start_button.click()
        assert not tab.start_button.isEnabled() and tab.cancel_button.isEnabled()
        assert not tab.epochs_spin.isEnabled()
    assert finished and os.path.isdir(finished[0])
    assert len(tab.curves.live["loss"].x) == 2  # one point per epoch once the epochs ended
    assert "val_loss" in tab.curves.live and "accuracy" in tab.curves.live
    assert tab.curves.redraw_count >= 1
    assert tab.start_button.isEnabled() and not tab.cancel_button.isEnabled()
    assert tab.runs_table.rowCount() == 1
    assert tab.runs_table.item(0, 3).text() == "finished"
    # ticking the run overlays its curves
    tab.set_run_checked(finished[0])
    assert tab.curves.overlays
    tab.smooth_check.setChecked(True)
    tab.curves.flush()


def test_cancel_returns_to_idle_quickly_and_keeps_last_keras(tab, qtbot, scanned):
    from engine.events import BatchProgress, EpochEnded

    tab.epochs_spin.setValue(200)
    seen = []

    def first_epoch(event):
        if isinstance(event, (EpochEnded, BatchProgress)):
            seen.append(event)

    handle = tab.start()
    handle.engine_event.connect(first_epoch)
    qtbot.waitUntil(lambda: any(isinstance(e, EpochEnded) for e in seen), timeout=120_000)
    started = time.monotonic()
    with qtbot.waitSignal(tab.done, timeout=5_000):
        tab.cancel_button.click()
    assert time.monotonic() - started < 1.0
    assert handle.outcome == "cancelled"
    assert tab.start_button.isEnabled()
    run_dir = tab.current_run
    assert run_dir and os.path.exists(os.path.join(run_dir, "last.keras"))
    from engine.models.loading import load_model

    loaded = load_model(run_dir)
    assert loaded.model is not None
    # the interrupted run can be resumed from the list
    tab.refresh_runs()
    tab.runs_table.selectRow(0)
    assert tab.resume_button.isEnabled()


def test_invalid_setting_shows_a_readable_message(tab, qtbot, errors):
    tab.lr_edit.setText("fast")
    with qtbot.waitSignal(tab.done, timeout=30_000):
        tab.start()
    assert errors and "learning rate" in errors[-1][1]
    assert not errors[-1][2]  # a ConvScopeError: no traceback section
    assert tab.start_button.isEnabled()
