"""The Training tab driven as a user would: pick a strategy, start, watch curves, cancel, compare runs."""

from __future__ import annotations

import os
import time
from pathlib import Path

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
def tab(scanned, open_tab):
    from app.tabs.training import TrainingTab

    widget = open_tab(TrainingTab)  # on the scanned context
    widget.show()
    widget.form.strategy_combo.setCurrentIndex(widget.form.strategy_combo.findData("scratch"))
    widget.form.size_spin.setValue(48)
    widget.form.batch_spin.setValue(8)
    widget.form.augment_check.setChecked(False)
    return widget


def test_form_follows_the_strategy(tab):
    tab.form.strategy_combo.setCurrentIndex(tab.form.strategy_combo.findData("features"))
    assert not tab.form.augment_check.isEnabled() and not tab.form.augment_check.isChecked()
    assert not tab.form.preset_combo.isVisibleTo(tab) and tab.form.base_combo.isVisibleTo(tab)
    assert tab.form.base_combo.count() >= 1 and tab.form.base_status.text()
    tab.form.strategy_combo.setCurrentIndex(tab.form.strategy_combo.findData("finetune"))
    assert tab.form.finetune_combo.isVisibleTo(tab) and tab.form.augment_check.isChecked()
    tab.form.strategy_combo.setCurrentIndex(tab.form.strategy_combo.findData("scratch"))
    assert tab.form.preset_combo.isVisibleTo(tab)


def test_training_draws_curves_and_lists_the_run(tab, qtbot, scanned):
    tab.form.epochs_spin.setValue(2)
    finished = []
    scanned.run_finished.connect(finished.append)
    with qtbot.waitSignal(tab.done, timeout=180_000):
        tab.form.start_button.click()
        assert not tab.form.start_button.isEnabled() and tab.form.cancel_button.isEnabled()
        assert not tab.form.epochs_spin.isEnabled()
    assert finished and os.path.isdir(finished[0])
    assert len(tab.curves.live["loss"].x) == 2  # one point per epoch once the epochs ended
    assert "val_loss" in tab.curves.live and "accuracy" in tab.curves.live
    assert tab.curves.redraw_count >= 1
    assert tab.form.start_button.isEnabled() and not tab.form.cancel_button.isEnabled()
    assert tab.runs.table.rowCount() == 1
    assert tab.runs.table.item(0, 3).text() == "finished"
    # ticking the run overlays its curves
    tab.runs.set_run_checked(finished[0])
    assert tab.curves.overlays
    tab.smooth_check.setChecked(True)
    tab.curves.flush()


def _one_epoch_run(tab, qtbot, context) -> Path:
    """Train one epoch with the form's settings by clicking Start; the finished run's folder."""
    tab.form.epochs_spin.setValue(1)
    finished = []
    context.run_finished.connect(finished.append)
    with qtbot.waitSignal(tab.done, timeout=180_000):
        tab.form.start_button.click()
    return Path(finished[0])


def test_the_precision_chosen_in_the_form_is_the_one_the_run_records(tab, qtbot, scanned):
    import json

    from engine.precision import choose_precision

    combo = tab.form.precision_combo
    assert combo.currentData() == "float32"  # the default: the same numbers on every machine
    assert combo.itemText(combo.findData("auto")) == f"Auto ({choose_precision('auto').policy} here)"
    combo.setCurrentIndex(combo.findData("mixed_bfloat16"))
    manifest = json.loads((_one_epoch_run(tab, qtbot, scanned) / "manifest.json").read_text())
    assert manifest["precision"] == {"policy": "mixed_bfloat16", "reason": "chosen explicitly"}
    assert scanned.settings.value("training/precision", "", str) == "mixed_bfloat16"


def test_the_optimizer_chosen_in_the_form_is_the_one_the_run_records(tab, qtbot, scanned):
    import json

    combo = tab.form.optimizer_combo
    assert combo.currentData() == "rmsprop"  # the default: the book's
    combo.setCurrentIndex(combo.findText("Adam, warm-up + cosine decay"))
    config = json.loads((_one_epoch_run(tab, qtbot, scanned) / "config.json").read_text())
    assert config["optimizer"] == "adam-cosine"


def test_the_other_workers_command_carries_the_chosen_optimizer(tab):
    import shlex

    panel = tab.cluster_panel
    panel.setChecked(True)
    panel.workers_edit.setPlainText("127.0.0.1:23456\n127.0.0.1:23457")
    assert "--optimizer" not in shlex.split(panel.commands_view.toPlainText())  # the default goes unsaid
    tab.form.optimizer_combo.setCurrentIndex(tab.form.optimizer_combo.findData("adam-cosine"))
    argv = shlex.split(panel.commands_view.toPlainText())  # the command follows the form
    assert argv[argv.index("--optimizer") + 1] == "adam-cosine"


def test_the_optimizer_survives_closing_and_reopening_the_window(window, qtbot, context):
    from app.main_window import MainWindow

    combo = window.show_tab("Training").form.optimizer_combo
    combo.setCurrentIndex(combo.findText("Adam, warm-up + cosine decay"))
    window.close()
    again = MainWindow(context, load_tf=False)
    qtbot.addWidget(again)
    assert again.show_tab("Training").form.optimizer_combo.currentData() == "adam-cosine"
    again.close()


def test_cancel_returns_to_idle_quickly_and_keeps_last_keras(tab, qtbot, scanned):
    from engine.events import BatchProgress, EpochEnded

    tab.form.epochs_spin.setValue(200)
    seen = []

    def first_epoch(event):
        if isinstance(event, (EpochEnded, BatchProgress)):
            seen.append(event)

    handle = tab.start()
    handle.engine_event.connect(first_epoch)
    qtbot.waitUntil(lambda: any(isinstance(e, EpochEnded) for e in seen), timeout=120_000)
    started = time.monotonic()
    with qtbot.waitSignal(tab.done, timeout=5_000):
        tab.form.cancel_button.click()
    assert time.monotonic() - started < 1.0
    assert handle.outcome == "cancelled"
    assert tab.form.start_button.isEnabled()
    run_dir = tab.current_run
    assert run_dir and os.path.exists(os.path.join(run_dir, "last.keras"))
    from engine.models.loading import load_model

    loaded = load_model(run_dir)
    assert loaded.model is not None
    # the interrupted run can be resumed from the list
    tab.runs.refresh()
    tab.runs.table.selectRow(0)
    assert tab.runs.resume_button.isEnabled()


def test_invalid_setting_shows_a_readable_message(tab, qtbot, errors):
    tab.form.lr_edit.setText("fast")
    with qtbot.waitSignal(tab.done, timeout=30_000):
        tab.start()
    assert errors and "learning rate" in errors[-1][1]
    assert not errors[-1][2]  # a ConvScopeError: no traceback section
    assert tab.form.start_button.isEnabled()
