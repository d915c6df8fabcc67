"""The Evaluation tab's "Predict — drop images here" box: a run's model on images the user picks or
drops (``engine.predict.predict_images`` in the job runner), one row per image."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QPushButton, QTableWidgetItem, QVBoxLayout

from app.jobs import JobHandle
from app.widgets.model_source import image_file_filter, is_image_file
from app.widgets.tables import read_only_table


class PredictPanel(QGroupBox):
    """[Predict images…] and the table of predictions; ``run_dir()`` names the run to predict with."""

    predicted = Signal()  # a prediction job ended

    def __init__(self, context, run_dir, parent=None) -> None:
        super().__init__("Predict — drop images here", parent)
        self.context = context
        self._run_dir = run_dir  # callable: the run chosen in the tab now
        self.button = QPushButton("Predict images…")
        self.button.clicked.connect(self.choose_images)
        self.table = read_only_table(["Image", "Predicted", "Probability"])
        row = QHBoxLayout()
        row.addWidget(self.button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.table)

    @Slot()
    def choose_images(self) -> None:
        start = self.context.settings.value("folders/images", os.path.expanduser("~"), str)
        paths, _ = QFileDialog.getOpenFileNames(self, "Images to classify", start, image_file_filter())
        if paths:
            self.context.settings.set_value("folders/images", os.path.dirname(paths[0]))
            self.predict(paths)

    def predict(self, paths: list[str]) -> JobHandle | None:
        run_dir = self._run_dir()
        if not run_dir:
            from engine.errors import InvalidSetting  # noqa: PLC0415

            self.context.runner.report_error("Predict", InvalidSetting(
                "no run chosen", "pick a run at the top of the Evaluation tab first"))
            return None

        def job(emit, cancel):
            from engine.models.loading import load_model  # noqa: PLC0415
            from engine.predict import predict_images  # noqa: PLC0415

            loaded = load_model(run_dir)
            cancel.raise_if_cancelled()
            return predict_images(loaded, paths, top_k=1)

        handle = self.context.runner.start("Predicting", job, group="predict")
        handle.finished.connect(self._on_predicted)
        handle.ended.connect(self.predicted)
        return handle

    def predict_images_in(self, paths: list[str]) -> bool:
        """Predict the image files among dropped ``paths``; False when there are none."""
        images = [p for p in paths if os.path.isfile(p) and is_image_file(p)]
        if images:
            self.predict(images)
        return bool(images)

    @Slot(object)
    def _on_predicted(self, predictions) -> None:
        self.table.setRowCount(len(predictions))
        for row, prediction in enumerate(predictions):
            name = QTableWidgetItem(os.path.basename(prediction.path))
            name.setToolTip(prediction.path)
            top = prediction.top[0] if prediction.top else (None, "?", 0.0)
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, QTableWidgetItem(str(top[1])))
            prob = QTableWidgetItem(f"{top[2]:.3f}")
            prob.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 2, prob)
