"""The Training tab fine-tunes with augmentation ticked, as a user starts it (issue 18): the real tab,
the real child process, the real EfficientNet-Lite0 weights at its smallest input size."""

from __future__ import annotations

import json
import os

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_finetuning_with_augmentation_ticked_finishes(tf_context, qtbot, shapes, cached, errors):
    from app.tabs.dataset import DatasetTab
    from app.tabs.training import TrainingTab

    dataset_tab = DatasetTab(tf_context)
    qtbot.addWidget(dataset_tab)
    with qtbot.waitSignal(dataset_tab.done, timeout=30_000):
        dataset_tab.open_folder(str(shapes))
    tab = TrainingTab(tf_context)
    qtbot.addWidget(tab)
    tab.show()
    tab.form.strategy_combo.setCurrentIndex(tab.form.strategy_combo.findData("finetune"))
    tab.form.base_combo.setCurrentIndex(tab.form.base_combo.findData("efficientnet-lite0"))
    assert tab.form.augment_check.isChecked()  # the strategy's default, as the user sees it
    tab.form.size_spin.setValue(32)
    tab.form.batch_spin.setValue(8)
    tab.form.epochs_spin.setValue(1)
    finished = []
    tf_context.run_finished.connect(finished.append)
    with qtbot.waitSignal(tab.done, timeout=240_000):
        tab.form.start_button.click()
    assert not errors, errors
    assert finished and os.path.isdir(finished[0])
    with open(os.path.join(finished[0], "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    assert config["strategy"] == "finetune" and config["augment"] is True
    with open(os.path.join(finished[0], "history.csv"), encoding="utf-8") as handle:
        phases = [line.split(",")[1] for line in handle.read().splitlines()[1:]]
    assert phases == ["head", "finetune"]
