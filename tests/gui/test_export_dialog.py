"""The Export dialog driven as a user would: from the Evaluation tab's Export… button, pick a format
and a quantization, export, read the check's result in the dialog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture
def trained_run(tmp_path, shapes):
    from engine.train.config import TrainConfig
    from engine.train.strategies import train

    result = train(TrainConfig(data=str(shapes), strategy="scratch", epochs=1, batch_size=8, image_size=48,
                               augment=True, augmentation="book", out=str(tmp_path / "run"), tensorboard=False))
    return result.run_dir


def test_export_from_the_evaluation_tab_shows_the_check(window, qtbot, trained_run, errors):
    tab = window.show_tab("Evaluation")
    tab.show_run(trained_run, evaluate_if_missing=False)
    tab.export_button.click()
    dialog = window.export_dialog
    assert dialog is not None and dialog.isVisible() and dialog.model_source == trained_run
    # the formats and what each can quantize
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("savedmodel"))
    assert [dialog.quantize_combo.itemData(i) for i in range(dialog.quantize_combo.count())] == ["none"]
    assert not dialog.quantize_combo.isEnabled()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("litert"))
    assert [dialog.quantize_combo.itemData(i) for i in range(dialog.quantize_combo.count())] == [
        "none", "float16", "dynamic", "int8"]
    assert dialog.destination_edit.text() == str(Path(trained_run) / "exports" / "litert")
    with qtbot.waitSignal(dialog.ended, timeout=180_000):
        dialog.export_button.click()
    assert errors == []
    text = dialog.result_label.text()
    assert "Check passed" in text and "top-1 agreement" in text and "100.00%" in text
    out = Path(trained_run) / "exports" / "litert"
    assert (out / "model.tflite").is_file() and str(out / "model.tflite") in text
    card = json.loads((out / "model_card.json").read_text())
    assert card["class_names"] == ["circle", "square"] and card["parity"]["passed"]
    # the same destination again, without "replace": refused, said in the dialog and the error box
    with qtbot.waitSignal(dialog.ended, timeout=180_000):
        dialog.export_button.click()
    assert "Not exported" in dialog.result_label.text() and "already exists" in dialog.result_label.text()
    assert len(errors) == 1 and "already exists" in errors[0][1]


def test_a_failed_check_shows_its_figures_and_where_it_was_kept(context, qtbot, tmp_path):
    from app.dialogs.export import ExportDialog
    from engine.errors import ParityError
    from engine.export.job import ExportResult

    dialog = ExportDialog(context, str(tmp_path / "model.keras"))
    qtbot.addWidget(dialog)
    parity = {"images": 9, "source": "the test split of run", "quantize": "none", "max_abs_diff": 0.003,
              "mean_abs_diff": 0.001, "top1_agreement": 1.0, "keras_accuracy": None, "export_accuracy": None,
              "criterion": "max abs diff <= 0.0001 and 100% top-1 agreement", "passed": False}
    error = ParityError("the export differs", "")
    error.result = ExportResult(path=str(tmp_path / "out.failed"), format="onnx", quantize="none",
                                artifact=str(tmp_path / "out.failed" / "model.onnx"), size_bytes=10,
                                parity=parity, card=str(tmp_path / "out.failed" / "model_card.json"))
    dialog._on_failed(error)
    text = dialog.result_label.text()
    assert "Check FAILED" in text and "0.003" in text and "out.failed" in text
    assert dialog.destination_edit.text() == str(tmp_path / "model-savedmodel")


def test_export_from_a_run_in_the_training_tabs_runs_list(window, qtbot, trained_run, context):
    context.settings.set_value("training/runs_root", str(Path(trained_run).parent))
    tab = window.show_tab("Training")
    tab.runs.refresh()
    table = tab.runs.table
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text().startswith("run"))
    table.selectRow(row)
    assert tab.runs.export_button.isEnabled()
    tab.runs.export_button.click()
    assert window.export_dialog is not None and window.export_dialog.model_source == trained_run
