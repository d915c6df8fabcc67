"""A window with a whole-class explanation: the mean heatmap and the gallery, weakest explanation first.

Opened from the Evaluation tab for a class or a confusion-matrix cell; it runs
:func:`engine.inspect.class_explain.explain_test_class` as its own job and only renders the result.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from app.widgets.image_view import ImageView
from app.widgets.job_progress import JobProgress

GROUP = "Class explanation"
ICON = 112


def _icon(pixels: np.ndarray) -> QIcon:
    pixels = np.ascontiguousarray(pixels)
    image = QImage(pixels.data, pixels.shape[1], pixels.shape[0], pixels.strides[0], QImage.Format.Format_RGB888)
    return QIcon(QPixmap.fromImage(image.copy()).scaled(ICON, ICON, Qt.AspectRatioMode.KeepAspectRatio,
                                                        Qt.TransformationMode.SmoothTransformation))


class ClassExplanationWindow(QDialog):
    done = Signal()  # the explanation is shown, or failed

    def __init__(self, context, config, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.config = config
        self.result = None
        self.last_error = ""
        cell = f" predicted as <b>{config.predicted}</b>" if config.predicted else ""
        self.setWindowTitle(f"Explanation of the test images of {config.test_class}")
        self.resize(1100, 700)
        self.header = QLabel(f"{config.method} over the test images of <b>{config.test_class}</b>{cell}…", self)
        self.header.setWordWrap(True)
        self.mean_view = ImageView(self, placeholder="Mean heatmap")
        self.mean_view.setMinimumWidth(320)
        self.gallery = QListWidget(self)
        self.gallery.setViewMode(QListWidget.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(ICON, ICON))
        self.gallery.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.gallery.setMovement(QListWidget.Movement.Static)
        self.gallery.setToolTip("Sorted by faithfulness (insertion AUC − deletion AUC), weakest explanation first")
        self.progress = JobProgress(context.runner, GROUP, self)
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>Mean heatmap</b> over the mean image", self))
        left.addWidget(self.mean_view, 1)
        right = QVBoxLayout()
        right.addWidget(QLabel("<b>Gallery</b> — weakest explanation first (caption: faithfulness, probability)", self))
        right.addWidget(self.gallery, 1)
        body = QHBoxLayout()
        body.addLayout(left, 2)
        body.addLayout(right, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addLayout(body, 1)
        layout.addWidget(self.progress)
        self.handle = None

    def start(self) -> None:
        config = self.config

        def job(emit, cancel):
            from engine.inspect.class_explain import explain_test_class  # noqa: PLC0415

            return explain_test_class(config, emit, cancel)

        self.handle = self.context.runner.start("Explaining a class", job, group=GROUP)
        self.handle.finished.connect(self._on_finished)
        self.handle.failed.connect(self._on_failed)

    @Slot(object)
    def _on_finished(self, result) -> None:
        from engine.inspect.cam import overlay  # noqa: PLC0415

        self.result = result
        cell = f" predicted as <b>{result.predicted}</b>" if result.predicted else ""
        self.header.setText(
            f"{result.method} of <b>{result.explained_class}</b> over {len(result.items)} test image(s) of "
            f"<b>{result.test_class}</b>{cell}. Weakest explanation: {result.items[0].faithfulness:+.2f}, "
            f"strongest: {result.items[-1].faithfulness:+.2f} (insertion − deletion AUC).")
        self.mean_view.set_image(overlay(result.mean_image, result.mean_heatmap))
        self.gallery.clear()
        for item in result.items:
            entry = QListWidgetItem(_icon(overlay(item.image, item.heatmap)),
                                    f"{item.faithfulness:+.2f}  p {item.probability:.2f}")
            entry.setToolTip(f"{item.path}\npredicted {item.predicted}; deletion AUC {item.deletion_auc:.3f}, "
                             f"insertion AUC {item.insertion_auc:.3f}")
            entry.setData(Qt.ItemDataRole.UserRole, item.path)
            self.gallery.addItem(entry)
        self.done.emit()

    @Slot(object)
    def _on_failed(self, error: object) -> None:
        self.last_error = str(error)
        self.header.setText(f"⚠ {error}")
        self.done.emit()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.handle is not None and self.handle.running:
            self.handle.cancel()
        super().closeEvent(event)


def class_explanation_buttons(tab, row) -> tuple:
    """The Evaluation tab's two buttons (disabled until a cell is open), added to ``row``; clicks go
    to ``tab.explain_class`` / ``tab.explain_cell``."""
    from PySide6.QtWidgets import QPushButton  # noqa: PLC0415

    whole = QPushButton("Explain the whole class")
    whole.setToolTip("Grad-CAM over every test image of the open cell's true class: the mean heatmap and a "
                     "gallery sorted by faithfulness, weakest first")
    cell = QPushButton("Explain this cell")
    cell.setToolTip("The same for the open cell's images only, explained as the predicted class")
    for button, slot in ((whole, tab.explain_class), (cell, tab.explain_cell)):
        button.setEnabled(False)
        button.clicked.connect(slot)
        row.addWidget(button)
    return whole, cell


def open_class_explanation(parent, context, run_dir: str, classes: list[str], cell, whole_class: bool):
    """Open (and start) a window explaining ``cell`` = (true row, predicted column)'s true class, or
    only that cell's images; None when no cell is open."""
    from engine.inspect.class_explain import ClassExplainConfig  # noqa: PLC0415

    if cell is None or not run_dir:
        return None
    row, column = cell
    config = ClassExplainConfig(run=run_dir, test_class=classes[row], predicted=None if whole_class else classes[column])
    window = ClassExplanationWindow(context, config, parent)
    window.show()
    window.start()
    return window
