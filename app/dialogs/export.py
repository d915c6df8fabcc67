"""The Export dialog: a model to SavedModel, LiteRT, ONNX or .keras, and the check's result shown.

It only collects the settings of ``engine.export.job.ExportConfig`` and runs ``engine.export.job:run``
through the app's job runner in a child process (conversion holds the GIL for seconds); the figures
come back in the job's result, or in the :class:`ParityError` of a failed check.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.widgets.job_progress import JobProgress
from engine.export.registry import FORMATS, QUANTIZATIONS

GROUP = "export"
QUANTIZATION_HELP = {
    "none": "none (float32, checked to 1e-4)",
    "float16": "float16 weights (half the size)",
    "dynamic": "dynamic range (int8 weights)",
    "int8": "int8 (weights and activations, calibrated on the training split)",
}


def default_destination(model: str, fmt: str, quantize: str) -> str:
    """A run's exports go into its own ``exports/`` folder; a file's beside it."""
    name = fmt if quantize == "none" else f"{fmt}-{quantize}"
    source = Path(model)
    if source.is_dir():
        return str(source / "exports" / name)
    return str(source.with_name(f"{source.stem}-{name}"))


class ExportDialog(QDialog):
    """Settings, then the job, then the parity result in the dialog itself."""

    exported = Signal(object)  # ExportResult (the check passed)
    ended = Signal()  # the job ended, whatever its outcome

    def __init__(self, context: AppContext, model: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.model_source = str(model)
        self.result = None  # the last ExportResult (also of a failed check)
        self._job = None
        self.setWindowTitle("Export model")
        self._build()
        self._on_format_changed()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        model_label = QLabel(self.model_source)
        model_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Model:", model_label)
        self.format_combo = QComboBox()
        for fmt in FORMATS.values():
            self.format_combo.addItem(fmt.label, fmt.name)
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        form.addRow("Format:", self.format_combo)
        self.quantize_combo = QComboBox()
        self.quantize_combo.currentIndexChanged.connect(self._update_destination)
        form.addRow("Quantization:", self.quantize_combo)
        self.destination_edit = QLineEdit()
        form.addRow("Destination folder:", _with_browse(self.destination_edit, self._browse_destination))
        self.force_check = QCheckBox("Replace it if it exists (only once the new export passed its check)")
        form.addRow("", self.force_check)
        self.images_edit = QLineEdit()
        self.images_edit.setPlaceholderText("the run's test split" if self._is_run() else "required: a folder of images")
        form.addRow("Check on images:", _with_browse(self.images_edit, self._browse_images))
        layout.addLayout(form)
        note = QLabel("The export is loaded back in its own runtime and compared with the Keras model before it "
                      "is kept; a failed check is kept as <i>destination</i>.failed.")
        note.setWordWrap(True)
        layout.addWidget(note)
        self.progress = JobProgress(self.context.runner, GROUP, self)
        layout.addWidget(self.progress)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setTextFormat(Qt.TextFormat.RichText)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.result_label, 1)
        buttons = QDialogButtonBox()
        self.export_button = buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.clicked.connect(self.start)
        close = buttons.addButton(QDialogButtonBox.StandardButton.Close)
        close.clicked.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(720, 480)

    def _is_run(self) -> bool:
        return os.path.isfile(os.path.join(self.model_source, "config.json"))

    # ---- settings
    @property
    def format_name(self) -> str:
        return self.format_combo.currentData()

    @Slot()
    def _on_format_changed(self, *_args) -> None:
        fmt = FORMATS[self.format_name]
        current = self.quantize_combo.currentData()
        self.quantize_combo.clear()
        for name in QUANTIZATIONS:
            if name in fmt.quantizations:
                self.quantize_combo.addItem(QUANTIZATION_HELP[name], name)
        index = self.quantize_combo.findData(current)
        self.quantize_combo.setCurrentIndex(max(index, 0))
        self.quantize_combo.setEnabled(len(fmt.quantizations) > 1)
        self._update_destination()

    @Slot()
    def _update_destination(self, *_args) -> None:
        self.destination_edit.setText(default_destination(self.model_source, self.format_name,
                                                          self.quantize_combo.currentData() or "none"))

    @Slot()
    def _browse_destination(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to create the export in")
        if folder:
            self.destination_edit.setText(os.path.join(folder, Path(self.destination_edit.text()).name))

    @Slot()
    def _browse_images(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Images to check the export on")
        if folder:
            self.images_edit.setText(folder)

    def config(self):
        from engine.export.job import ExportConfig  # noqa: PLC0415 (no TensorFlow)

        return ExportConfig(model=self.model_source, format=self.format_name, out=self.destination_edit.text().strip(),
                            quantize=self.quantize_combo.currentData(), force=self.force_check.isChecked(),
                            images=self.images_edit.text().strip() or None)

    # ---- the job
    @Slot()
    def start(self):
        config = self.config()
        self.result = None
        self.result_label.setText("")
        self.export_button.setEnabled(False)
        self._job = self.context.runner.start_process("Exporting", "engine.export.job:run", (config,), group=GROUP)
        self._job.finished.connect(self._on_finished)
        self._job.failed.connect(self._on_failed)
        self._job.ended.connect(self._on_ended)
        return self._job

    @Slot(object)
    def _on_finished(self, result) -> None:
        self.result = result
        self.show_result(result, passed=True)
        self.exported.emit(result)

    @Slot(object)
    def _on_failed(self, error) -> None:
        result = getattr(error, "result", None)
        if result is not None:  # a failed parity check: the figures, and where the export was kept
            self.result = result
            self.show_result(result, passed=False)
        else:
            self.result_label.setText(f"<b>Not exported:</b> {_escape(str(error))}")

    @Slot()
    def _on_ended(self) -> None:
        self.export_button.setEnabled(True)
        self.ended.emit()

    def show_result(self, result, passed: bool) -> None:
        parity = result.parity
        verdict = ("<span style='color:#2e9d4f'><b>Check passed</b></span>" if passed
                   else "<span style='color:#d0453b'><b>Check FAILED</b></span>")
        accuracy = ("" if parity["keras_accuracy"] is None else
                    f"<tr><td>accuracy (export / Keras)</td><td>{parity['export_accuracy']:.2%} / "
                    f"{parity['keras_accuracy']:.2%}</td></tr>")
        self.result_label.setText(
            f"{verdict} — {_escape(parity['criterion'])}, on {parity['images']} images of "
            f"{_escape(parity['source'])}"
            "<table cellspacing='6'>"
            f"<tr><td>max abs difference</td><td>{parity['max_abs_diff']:.3g}</td></tr>"
            f"<tr><td>mean abs difference</td><td>{parity['mean_abs_diff']:.3g}</td></tr>"
            f"<tr><td>top-1 agreement</td><td>{parity['top1_agreement']:.2%}</td></tr>"
            f"{accuracy}"
            f"<tr><td>artifact</td><td>{_escape(result.artifact)} ({result.size_bytes:,} bytes)</td></tr>"
            f"<tr><td>model card</td><td>{_escape(result.card)}</td></tr>"
            "</table>")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _with_browse(edit: QLineEdit, on_browse) -> QHBoxLayout:
    """``edit`` with a "Browse…" button beside it that calls ``on_browse``."""
    browse = QPushButton("Browse…")
    browse.clicked.connect(on_browse)
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(browse)
    return row
