"""Untrusted input in the GUI: a hostile .keras file is refused inline and the loaded model stays;
a named pipe in a dataset is set aside instead of freezing the scan."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_models  # noqa: E402


@pytest.fixture()
def bomb(tmp_path):
    from engine.tf_runtime import keras

    k = keras()
    inputs = k.Input((16, 16, 3))
    x = k.layers.GlobalAveragePooling2D()(k.layers.Conv2D(4, 3)(inputs))
    k.Model(inputs, k.layers.Dense(2)(x)).save(tmp_path / "tiny.keras")
    entries = hostile_models.genuine_entries(tmp_path / "tiny.keras")
    return hostile_models.inflating_entry(entries, tmp_path / "from-an-email.keras"), tmp_path / "tiny.keras"


def test_a_bomb_picked_in_a_tab_is_refused_inline_and_the_loaded_model_stays(tf_context, open_tab, qtbot, errors,
                                                                             bomb, tmp_path):
    from app.screenshot import save_grab
    from app.tabs.activations import ActivationsTab

    hostile, genuine = bomb
    tab = open_tab(ActivationsTab)
    picker = tab.model_picker
    with qtbot.waitSignal(tf_context.model_changed, timeout=60_000):
        picker.open_source(str(genuine))
    before, files = tf_context.current_model, sorted(os.listdir(tmp_path))
    with qtbot.waitSignal(tf_context.model_failed, timeout=60_000) as failed:
        picker.open_source(str(hostile))
    assert failed.args[0] == str(hostile)
    assert picker.status.text().startswith("⚠ from-an-email.keras not loaded: refused: archive entry 'model.weights.h5'")
    assert picker.combo.currentData() == str(genuine)  # the picker names the model still loaded
    assert "decompression bomb" in picker.status.text()
    assert tf_context.current_model is before  # the genuine model is still the one shown
    assert any("decompression bomb" in message for _, message, _ in errors)
    assert sorted(os.listdir(tmp_path)) == files  # nothing extracted beside the file
    shots = os.environ.get("CONVSCOPE_TEST_SCREENSHOTS")
    if shots:
        tab.show()
        qtbot.waitExposed(tab)
        save_grab(tab, Path(shots) / "untrusted_model_refused.png")


def test_a_named_pipe_in_a_class_folder_is_set_aside_in_the_dataset_tab(open_tab, qtbot, shapes):
    """The issue's case: before, the tab's scan (and every training) waited forever on the pipe."""
    from app.screenshot import save_grab
    from app.tabs.dataset import DatasetTab

    os.mkfifo(shapes / "circle" / "something.jpg")
    tab = open_tab(DatasetTab)
    tab.show()
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.open_folder(str(shapes))
    rows = {tab.unusable_table.item(r, 0).text(): tab.unusable_table.item(r, 1).text()
            for r in range(tab.unusable_table.rowCount())}
    assert rows == {os.path.join("circle", "something.jpg"):
                    "not a regular file (a named pipe): skipped"}
    assert tab.chart.counts == {"circle": 12, "square": 12}
    shots = os.environ.get("CONVSCOPE_TEST_SCREENSHOTS")
    if shots:
        save_grab(tab, Path(shots) / "untrusted_dataset_pipe.png")
