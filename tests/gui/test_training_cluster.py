"""The Training tab as the chief of a two-worker cluster on 127.0.0.1: the user lists the workers, runs
the command the tab shows on the other "machine", sees it join, and the run trains on both."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from cluster_workers import loopback_cluster, start

pytestmark = [pytest.mark.gui, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def tab(tf_context, qtbot, shapes, open_tab):
    from app.tabs.dataset import DatasetTab
    from app.tabs.training import TrainingTab

    dataset_tab = open_tab(DatasetTab)
    with qtbot.waitSignal(dataset_tab.done, timeout=30_000):
        dataset_tab.open_folder(str(shapes))
    widget = open_tab(TrainingTab)
    widget.resize(1280, 900)
    widget.show()
    form = widget.form
    form.strategy_combo.setCurrentIndex(form.strategy_combo.findData("scratch"))
    form.size_spin.setValue(48)
    # 12 training images in batches of 11: a last batch of 1 cannot be shared by 2 replicas (one
    # would get an empty batch, on which TensorFlow's CPU convolution fails); it is left out
    form.batch_spin.setValue(11)
    form.epochs_spin.setValue(2)
    form.augment_check.setChecked(False)
    return widget


def _rows(panel) -> list[str]:
    return [panel.joined_list.item(i).text() for i in range(panel.joined_list.count())]


def test_training_tab_trains_as_the_chief_of_a_two_worker_cluster(tab, qtbot, tmp_path):
    cluster = loopback_cluster()
    panel = tab.cluster_panel
    assert not panel.workers_edit.isVisible()
    panel.setChecked(True)
    panel.workers_edit.setPlainText("\n".join(cluster))
    shown = panel.commands_view.toPlainText()
    argv = shlex.split(shown)
    assert argv[:2] == ["convscope", "train"] and argv[-4:] == ["--cluster", ",".join(cluster), "--task", "1"]
    assert "--epochs" in argv and argv[argv.index("--epochs") + 1] == "2"
    tab.form.epochs_spin.setValue(3)  # the command follows the form
    argv = shlex.split(panel.commands_view.toPlainText())
    assert argv[argv.index("--epochs") + 1] == "3"
    assert "not joined yet" in _rows(panel)[1]

    with qtbot.waitSignal(tab.done, timeout=400_000):
        tab.form.start_button.click()
        qtbot.waitUntil(lambda: "waiting for 1 worker" in tab.status_label.text(), timeout=60_000)
        assert "not joined yet" in _rows(panel)[1]
        log = tmp_path / "worker.log"
        worker = start(argv[1:], home=tmp_path / "other-machine", log=log)  # exactly the command shown
        qtbot.waitUntil(lambda: "joined" in _rows(panel)[1] and "not" not in _rows(panel)[1], timeout=120_000)
    assert worker.wait(timeout=120) == 0, log.read_text()[-3000:]
    run = Path(argv[argv.index("--out") + 1])
    assert tab.status_label.text() == f"Finished: {run}"
    assert len((run / "history.csv").read_text().splitlines()) == 1 + 3
    assert json.loads((run / "manifest.json").read_text())["cluster"]["workers"] == cluster
    assert not panel.workers_edit.isReadOnly()
    warnings = [tab.warnings_list.item(i).text() for i in range(tab.warnings_list.count())]
    assert any("the last 1 train image(s) of each epoch are left out" in w for w in warnings), warnings
