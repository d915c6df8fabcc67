"""Evaluation tab: a run's test accuracy, per-class precision/recall/F1, a clickable confusion
matrix opening the gallery of that cell's images with their scores, one click from an image to its
Grad-CAM, and predictions on images the user drops in."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.widgets.tf_gate import TfGate
from app.jobs import JobHandle
from app.widgets.class_explanation import class_explanation_buttons, open_class_explanation
from app.widgets.job_progress import JobProgress
from app.widgets.tables import read_only_table
from app.widgets.predict_panel import PredictPanel
from app.widgets.thumbnails import ThumbnailModel, thumbnail_view

GROUP = "evaluation"


@dataclass
class EvaluationViewModel:
    run_dir: str = ""
    metrics: dict = field(default_factory=dict)  # metrics.json content

    @property
    def classes(self) -> list[str]:
        return list(self.metrics.get("classes", []))

    def cell_items(self, true_index: int, predicted_index: int) -> list[dict]:
        classes = self.classes
        if not classes:
            return []
        true_name, predicted_name = classes[true_index], classes[predicted_index]
        items = [p for p in self.metrics.get("predictions", [])
                 if p.get("true") == true_name and p.get("predicted") == predicted_name]
        return sorted(items, key=lambda p: -float(p.get("score", 0)))


class EvaluationTab(QWidget):
    title = "Evaluation"
    done = Signal()  # an evaluation ended
    predicted = Signal()  # a prediction job ended
    gallery_changed = Signal()

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.model = EvaluationViewModel()
        self._job: JobHandle | None = None
        self._pending_cam: str | None = None
        self.open_cell_at: tuple[int, int] | None = None  # the confusion cell whose images are shown
        self.class_window = None  # the last whole-class explanation window
        self.setAcceptDrops(True)
        self._build()
        for widget in [self.evaluate_button, self.predict_button]:
            self.tf_gate.add(widget)
        context.run_finished.connect(self._on_run_finished)
        context.runs_changed.connect(self._on_runs_changed)
        context.model_changed.connect(self._on_model_changed)
        context.open_run.connect(self.show_run)
        self._runs_stale = False
        self.refresh_runs()

    # ---- layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        self.run_combo = QComboBox()
        self.run_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.run_combo.setMinimumContentsLength(30)
        self.run_combo.activated.connect(self._on_run_picked)
        top.addWidget(self.run_combo, 1)
        self.evaluate_button = QPushButton("Evaluate on the test split")
        self.evaluate_button.clicked.connect(self.evaluate)
        top.addWidget(self.evaluate_button)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Export this run's model to SavedModel, LiteRT, ONNX or .keras, checked "
                                      "against the Keras model")
        self.export_button.clicked.connect(self.export_run)
        top.addWidget(self.export_button)
        self.tf_gate = TfGate(self.context, parent=self, text="Loading TensorFlow…")
        top.addWidget(self.tf_gate)
        root.addLayout(top)
        self.progress = JobProgress(self.context.runner, GROUP, self)
        root.addWidget(self.progress)
        self.summary_label = QLabel("Pick a run, or finish one in the Training tab.")
        self.summary_label.setWordWrap(True)
        font = self.summary_label.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.summary_label.setFont(font)
        root.addWidget(self.summary_label)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        metrics_box = QGroupBox("Per class")
        metrics_layout = QVBoxLayout(metrics_box)
        self.class_table = read_only_table(["Class", "Precision", "Recall", "F1", "Images"], rows=False)
        metrics_layout.addWidget(self.class_table)
        left_layout.addWidget(metrics_box, 1)
        confusion_box = QGroupBox("Confusion matrix — rows: true class, columns: predicted; click a cell")
        confusion_layout = QVBoxLayout(confusion_box)
        self.confusion_table = QTableWidget(0, 0)
        self.confusion_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.confusion_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.confusion_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.confusion_table.cellClicked.connect(self.open_cell)
        confusion_layout.addWidget(self.confusion_table)
        left_layout.addWidget(confusion_box, 2)
        splitter.addWidget(left)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        gallery_box = QGroupBox("Images")
        gallery_layout = QVBoxLayout(gallery_box)
        self.gallery_label = QLabel("Click a confusion-matrix cell to see its images.")
        self.gallery_label.setWordWrap(True)
        gallery_layout.addWidget(self.gallery_label)
        self.gallery = ThumbnailModel(self, size=112)
        self.gallery_view = thumbnail_view(self.gallery, self.show_cam)
        self.gallery_view.selectionModel().currentChanged.connect(self._update_cam_button)
        gallery_layout.addWidget(self.gallery_view, 1)
        cam_row = QHBoxLayout()
        self.cam_button = QPushButton("Grad-CAM of this image")
        self.cam_button.setToolTip("Open the selected image in the Grad-CAM tab with this run's model")
        self.cam_button.clicked.connect(self.cam_selected)
        self.cam_button.setEnabled(False)
        cam_row.addWidget(self.cam_button)
        self.explain_class_button, self.explain_cell_button = class_explanation_buttons(self, cam_row)
        cam_row.addStretch(1)
        gallery_layout.addLayout(cam_row)
        right_layout.addWidget(gallery_box, 3)
        self.predict_panel = PredictPanel(self.context, lambda: self.model.run_dir)
        self.predict_button, self.predict_table = self.predict_panel.button, self.predict_panel.table
        self.predict_panel.predicted.connect(self.predicted)
        right_layout.addWidget(self.predict_panel, 2)
        splitter.addWidget(right)
        splitter.setSizes([560, 700])
        root.addWidget(splitter, 1)

    # ---- runs
    @Slot()
    def _on_runs_changed(self) -> None:
        """The run list reads every run folder from disk: done now when the tab is in view, else
        when it is next shown (a run starting in the Training tab does not read them while it trains)."""
        if self.isVisible():
            self.refresh_runs()
        else:
            self._runs_stale = True

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._runs_stale:
            self.refresh_runs()

    @Slot()
    def refresh_runs(self) -> None:
        self._runs_stale = False
        from engine.paths import default_runs_dir  # noqa: PLC0415
        from engine.train.rundir import list_runs  # noqa: PLC0415

        root = self.context.settings.value("training/runs_root", "", str) or str(default_runs_dir())
        try:
            runs = list_runs(root)
        except Exception:  # noqa: BLE001
            runs = []
        current = self.model.run_dir
        self.run_combo.blockSignals(True)
        self.run_combo.clear()
        for info in runs:
            acc = "" if info.test_accuracy is None else f" — test acc. {info.test_accuracy:.3f}"
            self.run_combo.addItem(f"{info.name} ({info.strategy}, {info.status}){acc}", info.path)
        if current and self.run_combo.findData(current) < 0:
            self.run_combo.addItem(os.path.basename(current), current)
        index = self.run_combo.findData(current)
        if index >= 0:
            self.run_combo.setCurrentIndex(index)
        self.run_combo.blockSignals(False)

    @Slot(int)
    def _on_run_picked(self, index: int) -> None:
        run_dir = self.run_combo.itemData(index)
        if run_dir:
            self.show_run(run_dir)

    @Slot(str)
    def _on_run_finished(self, run_dir: str) -> None:
        self.refresh_runs()
        self.show_run(run_dir, evaluate_if_missing=True)

    def show_run(self, run_dir: str, evaluate_if_missing: bool = True) -> JobHandle | None:
        """Show a run's metrics.json; evaluate it first when there is none yet."""
        self.model.run_dir = run_dir
        self.context.settings.add_recent("runs", run_dir)
        if self.run_combo.findData(run_dir) < 0:
            self.refresh_runs()
        index = self.run_combo.findData(run_dir)
        if index >= 0:
            self.run_combo.setCurrentIndex(index)
        metrics_path = os.path.join(run_dir, "metrics.json")
        if os.path.exists(metrics_path):
            try:
                with open(metrics_path, encoding="utf-8") as handle:
                    self.show_metrics(json.load(handle))
                return None
            except (OSError, ValueError):
                pass
        self._clear()
        self.summary_label.setText(f"{os.path.basename(run_dir)}: not evaluated yet.")
        if evaluate_if_missing and self.context.tf_is_ready:
            return self.evaluate()
        return None

    @Slot()
    def evaluate(self) -> JobHandle | None:
        run_dir = self.model.run_dir or self.run_combo.currentData()
        if not run_dir:
            return None
        self.model.run_dir = run_dir
        # in a child process (engine.worker): the TensorFlow work does not hold the GUI's GIL
        self._job = self.context.runner.start_process("Evaluating", "engine.train.evaluate:evaluate",
                                                      (str(run_dir),), group=GROUP)
        self._job.finished.connect(self._on_evaluated)
        self._job.ended.connect(self._on_ended)
        self.evaluate_button.setEnabled(False)
        return self._job

    @Slot()
    def export_run(self) -> None:
        run_dir = self.model.run_dir or self.run_combo.currentData()
        if run_dir:
            self.context.export_model.emit(str(run_dir))

    @Slot()
    def cancel(self) -> None:
        self.context.runner.cancel_group(GROUP)

    @Slot(object)
    def _on_evaluated(self, result) -> None:
        self.show_metrics(result.to_dict())
        self.refresh_runs()

    @Slot()
    def _on_ended(self) -> None:
        self.evaluate_button.setEnabled(self.context.tf_is_ready)
        self.done.emit()

    # ---- display
    def _clear(self) -> None:
        self.model.metrics = {}
        self.class_table.setRowCount(0)
        self.confusion_table.setRowCount(0)
        self.confusion_table.setColumnCount(0)
        self.gallery.set_items([])

    def show_metrics(self, metrics: dict) -> None:
        self.model.metrics = metrics
        classes = self.model.classes
        accuracy = metrics.get("accuracy")
        loss = metrics.get("loss")
        self.summary_label.setText(
            f"<b>Test accuracy {accuracy:.1%}</b> · loss {loss:.3f} · {metrics.get('count', 0)} images of "
            f"{metrics.get('data', '')} · model {metrics.get('model_file', '')}")
        per_class = metrics.get("per_class", {})
        self.class_table.setRowCount(len(classes))
        for row, name in enumerate(classes):
            values = per_class.get(name, {})
            cells = [name] + [f"{values.get(k, 0):.3f}" for k in ("precision", "recall", "f1")] + \
                    [str(values.get("support", 0))]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.class_table.setItem(row, column, item)
        matrix = metrics.get("confusion_matrix", [])
        n = len(classes)
        self.confusion_table.setRowCount(n)
        self.confusion_table.setColumnCount(n)
        self.confusion_table.setHorizontalHeaderLabels([f"→ {c}" for c in classes])
        self.confusion_table.setVerticalHeaderLabels(classes)
        peak = max((max(row) for row in matrix if row), default=1) or 1
        for i in range(n):
            total = sum(matrix[i]) if i < len(matrix) else 0
            for j in range(n):
                count = matrix[i][j] if i < len(matrix) and j < len(matrix[i]) else 0
                item = QTableWidgetItem(f"{count}" + (f"\n{count / total:.0%}" if total else ""))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                strength = count / peak
                color = QColor(47, 127, 216) if i == j else QColor(217, 72, 72)
                color.setAlphaF(0.15 + 0.7 * strength if count else 0.0)
                item.setBackground(QBrush(color))
                item.setToolTip(f"true {classes[i]}, predicted {classes[j]}: {count} image(s) — click to see them")
                self.confusion_table.setItem(i, j, item)
        self.gallery.set_items([])
        self.gallery_label.setText("Click a confusion-matrix cell to see its images.")
        if n:
            worst = max(((i, j) for i in range(n) for j in range(n) if i != j),
                        key=lambda ij: matrix[ij[0]][ij[1]], default=(0, 0))
            self.open_cell(*(worst if matrix[worst[0]][worst[1]] else (0, 0)))

    @Slot(int, int)
    def open_cell(self, row: int, column: int) -> None:
        items = self.model.cell_items(row, column)
        classes = self.model.classes
        if not classes:
            return
        for i in range(self.confusion_table.rowCount()):  # the open cell in bold (no selection colour)
            for j in range(self.confusion_table.columnCount()):
                item = self.confusion_table.item(i, j)
                if item is not None:
                    font = item.font()
                    font.setBold(i == row and j == column)
                    item.setFont(font)
        self.open_cell_at = (row, column)
        for button in (self.explain_class_button, self.explain_cell_button):
            button.setEnabled(bool(self.model.run_dir) and self.context.tf_is_ready)
        self.gallery.set_items([(p["path"], f"{p['predicted']} {p['score']:.2f}") for p in items])
        kind = "correct" if row == column else "mistaken"
        self.gallery_label.setText(
            f"{len(items)} {kind} image(s): true <b>{classes[row]}</b>, predicted <b>{classes[column]}</b> "
            "(caption: predicted class and its score; most confident first).")
        if items:
            self.gallery_view.setCurrentIndex(self.gallery.index(0))
        self._update_cam_button()
        self.gallery_changed.emit()

    @Slot()
    def explain_class(self) -> None:
        self.class_window = open_class_explanation(self, self.context, self.model.run_dir, self.model.classes,
                                                   self.open_cell_at, whole_class=True)

    @Slot()
    def explain_cell(self) -> None:
        self.class_window = open_class_explanation(self, self.context, self.model.run_dir, self.model.classes,
                                                   self.open_cell_at, whole_class=False)

    def gallery_paths(self) -> list[str]:
        return self.gallery.paths()

    @Slot()
    def _update_cam_button(self, *_args) -> None:
        self.cam_button.setEnabled(self.gallery_view.currentIndex().isValid())

    @Slot()
    def cam_selected(self) -> None:
        index = self.gallery_view.currentIndex()
        if index.isValid():
            self.show_cam(index.data(ThumbnailModel.PathRole))

    def show_cam(self, path: str) -> None:
        """Switch to the Grad-CAM tab and explain ``path`` with this run's model."""
        run_dir = self.model.run_dir
        current = self.context.current_model
        if run_dir and (current is None or os.path.normpath(str(current.source)) != os.path.normpath(run_dir)):
            self._pending_cam = path
            self.context.open_model(run_dir)
        else:
            self._open_cam_tab(path)

    @Slot(object)
    def _on_model_changed(self, loaded) -> None:
        if self._pending_cam is not None:
            path, self._pending_cam = self._pending_cam, None
            self._open_cam_tab(path)

    def _open_cam_tab(self, path: str) -> None:
        self.context.show_tab.emit("Grad-CAM")
        self.context.explain_image.emit(path)

    # ---- prediction on dropped images
    def handle_drop(self, paths: list[str]) -> bool:
        return self.predict_panel.predict_images_in(paths)

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if self.handle_drop(paths):
            event.acceptProposedAction()
