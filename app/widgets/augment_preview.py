"""The Dataset tab's augmentation preview: a preset applied to one image, the original and eight
random draws, re-rolled on demand (``engine.data.augment.augmentation_preview`` in the job runner).
The chosen preset is the ``dataset/preset`` setting, which the Training tab's form starts from."""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.jobs import JobHandle
from app.widgets.tf_gate import TfGate

PREVIEW_COUNT = 8
PREVIEW_TILE = 112
PRESET_SETTING = "dataset/preset"
PLAIN = {  # one plain sentence per preset; the engine's full description is behind "more"
    "book": "Strong random changes: flips, rotations up to 40°, shifts, shear and zoom (the book's recipe).",
    "mild": "Small random changes: flips and shifts of up to a tenth of the image.",
}


def numpy_to_qimage(array: np.ndarray) -> QImage:
    array = np.ascontiguousarray(array.astype(np.uint8))
    height, width = array.shape[:2]
    if array.ndim == 2:
        return QImage(array.data, width, height, width, QImage.Format.Format_Grayscale8).copy()
    return QImage(array.data, width, height, width * 3, QImage.Format.Format_RGB888).copy()


class AugmentationPreview(QGroupBox):
    """Preset ▾  [Re-roll], its description, and a 3×3 grid: the original and eight draws."""

    done = Signal()  # a preview was drawn

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__("Augmentation preview", parent)
        self.context = context
        self._path: str | None = None
        self._job: JobHandle | None = None
        layout = QVBoxLayout(self)
        preset_row = QHBoxLayout()
        preset_row.addWidget(QLabel("Preset:"))
        self.preset_combo = QComboBox()
        self.preset_combo.currentIndexChanged.connect(self._on_preset_changed)
        preset_row.addWidget(self.preset_combo, 1)
        self.reroll_button = QPushButton("Re-roll")
        self.reroll_button.setToolTip("Draw new random augmentations of the same image")
        self.reroll_button.clicked.connect(self.reroll)
        preset_row.addWidget(self.reroll_button)
        layout.addLayout(preset_row)
        self.tf_gate = TfGate(context, [self.preset_combo, self.reroll_button], self, text="Loading TensorFlow…")
        layout.addWidget(self.tf_gate)
        self.description = QLabel("")
        self.description.setWordWrap(True)
        self.description.linkActivated.connect(self._toggle_description)
        self._full_description = False
        layout.addWidget(self.description)
        self.source_label = QLabel("Click a thumbnail to preview it.")
        self.source_label.setWordWrap(True)
        layout.addWidget(self.source_label)
        grid_holder = QWidget()
        grid = QGridLayout(grid_holder)
        grid.setSpacing(4)
        self.labels: list[QLabel] = []
        for i in range(PREVIEW_COUNT + 1):
            label = QLabel()
            label.setFixedSize(PREVIEW_TILE, PREVIEW_TILE)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet("border: 1px solid palette(mid);")
            grid.addWidget(label, i // 3, i % 3)
            self.labels.append(label)
        layout.addWidget(grid_holder, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(1)
        self._fill_presets()
        context.tf_ready.connect(self._on_tf_ready)

    def _fill_presets(self) -> None:
        from engine.data.augment import AUGMENTATION_PRESETS  # noqa: PLC0415 - no TensorFlow

        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        for name, description in AUGMENTATION_PRESETS.items():
            self.preset_combo.addItem(name, description)
        wanted = self.context.settings.value(PRESET_SETTING, "book", str)
        self.preset_combo.setCurrentIndex(max(self.preset_combo.findText(wanted), 0))
        self.preset_combo.blockSignals(False)
        self._show_description()

    @Slot()
    def _on_tf_ready(self) -> None:
        if self._path:
            self.reroll()

    def _show_description(self) -> None:
        """The preset's first sentence; the details (the book's units, Keras's) behind "more"."""
        text = self.preset_combo.currentData() or ""
        first = PLAIN.get(self.preset_combo.currentText()) or text.split(". ")[0].rstrip(".") + "."
        if first == text:
            self.description.setText(text)
        elif self._full_description:
            self.description.setText(f"{text} <a href='less'>less</a>")
        else:
            self.description.setText(f"{first} <a href='more'>more…</a>")

    @Slot(str)
    def _toggle_description(self, link: str) -> None:
        self._full_description = link == "more"
        self._show_description()

    @Slot(int)
    def _on_preset_changed(self, _index: int) -> None:
        self._show_description()
        self.context.settings.set_value(PRESET_SETTING, self.preset_combo.currentText())
        self.context.augmentation_chosen.emit(self.preset_combo.currentText())
        self.reroll()

    def set_image(self, path: str) -> None:
        self._path = path
        self.source_label.setText(f"Image: {os.path.basename(path)} (top left: original)")
        self.reroll()

    @Slot()
    def reroll(self) -> JobHandle | None:
        """Run the chosen preset on the preview image again (new random draws)."""
        if not self._path or not self.context.tf_is_ready or self.preset_combo.count() == 0:
            return None
        path, preset = self._path, self.preset_combo.currentText()
        seed = int(np.random.default_rng().integers(0, 10_000))

        def job(emit, cancel):
            from engine.data.augment import augmentation_preview  # noqa: PLC0415
            from engine.data.images import read_rgb_resized  # noqa: PLC0415

            image = read_rgb_resized(path, 160)
            cancel.raise_if_cancelled()
            return image, augmentation_preview(image, preset, count=PREVIEW_COUNT, seed=seed)

        self._job = self.context.runner.start("Augmentation preview", job, group="augmentation preview")
        self._job.finished.connect(self._on_preview)
        return self._job

    @Slot(object)
    def _on_preview(self, result) -> None:
        original, variants = result
        for label, image in zip(self.labels, [original, *list(variants)]):
            pixmap = QPixmap.fromImage(numpy_to_qimage(np.clip(np.asarray(image), 0, 255)))
            label.setPixmap(pixmap.scaled(PREVIEW_TILE, PREVIEW_TILE, Qt.AspectRatioMode.KeepAspectRatio,
                                          Qt.TransformationMode.SmoothTransformation))
        self.done.emit()
