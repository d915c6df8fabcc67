"""Study tab: the book's five ways to train on the loaded dataset, one frozen split, side by side.

It only renders: the job is :func:`engine.study.job.run` in a child process (like training); the
table, the rungs' validation curves (overlaid) and their confusion matrices (side by side) fill
from its events, the same ``convscope study --json-events`` prints; "Open study…" shows a finished
study from its study.json the same way, and "Resume study" continues an unfinished one (the engine
sends the rungs it finished earlier as events too, so the tab fills from the events alone). "Open report" opens the study's self-contained
``report.html`` in the system's browser.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QMessageBox,
                               QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.context import AppContext
from app.jobs import JobHandle
from app.tabs.engine_job_tab import EngineJobTab
from app.widgets.job_progress import JobProgress
from app.widgets.study_views import ConfusionMatrices, RungCurves

GROUP = "study"
COLUMNS = ("rung", "status", "test accuracy", "95% CI", "with flip TTA (95% CI; p vs plain)", "per-class F1", "epochs",
           "train s", "vs previous")
TTA_COLUMN, PREVIOUS_COLUMN = COLUMNS.index("with flip TTA (95% CI; p vs plain)"), COLUMNS.index("vs previous")
RUNG_NAMES = ("scratch", "scratch+aug", "features", "features-augmented", "finetune")


class StudyTab(EngineJobTab):
    title = "Study"
    group = GROUP
    job_target = "engine.study.job:run"  # what the child process runs (tests point it at a tiny study)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.folder: str | None = None
        self._running_rung: str | None = None  # the rung whose training epochs arrive now
        layout = QVBoxLayout(self)
        self.intro = QLabel("Load a dataset on the Dataset tab, then run the study: scratch, scratch with "
                            "augmentation, cached features, features with augmentation and fine-tuning, all "
                            "tested on the same images, with McNemar's test of every difference.")
        self.intro.setWordWrap(True)
        layout.addWidget(self.intro)
        row = QHBoxLayout()
        self.profile_combo = QComboBox()
        self.profile_combo.addItem("Quick (64/96 px, few epochs)", "quick")
        self.profile_combo.addItem("Full (the base's size, more epochs)", "full")
        self.start_button = QPushButton("Run study")
        self.cancel_button = QPushButton("Cancel")
        self.report_button = QPushButton("Open report")
        self.open_button = QPushButton("Open study…")
        self.resume_button = QPushButton("Resume study")
        self.resume_button.setToolTip("continue the shown study where it stopped; finished rungs are not retrained")
        for widget in (QLabel("Profile"), self.profile_combo, self.start_button, self.cancel_button,
                       self.open_button, self.resume_button, self.report_button):
            row.addWidget(widget)
        row.addStretch(1)
        layout.addLayout(row)
        self.progress = JobProgress(context.runner, GROUP, self, show_cancel=False)
        layout.addWidget(self.progress)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        self.table = QTableWidget(len(RUNG_NAMES), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        for row_index, name in enumerate(RUNG_NAMES):
            self._set(row_index, 0, f"{row_index + 1}. {name}")
            self._set(row_index, 1, "pending")
        self.curves = RungCurves(RUNG_NAMES)
        self.confusions = ConfusionMatrices()
        # the table shows its five rows whole; the curves take the height left, the matrices one row under them
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height()
                                  + len(RUNG_NAMES) * self.table.verticalHeader().defaultSectionSize()
                                  + 2 * self.table.frameWidth() + 2)
        layout.addWidget(self.table)
        views = QSplitter(Qt.Orientation.Vertical)
        views.addWidget(self.curves)
        views.addWidget(self.confusions)
        views.setStretchFactor(0, 1)
        views.setStretchFactor(1, 0)
        layout.addWidget(views, 1)
        self.start_button.clicked.connect(self.start)
        self.open_button.clicked.connect(self.choose_study)
        self.resume_button.clicked.connect(self.resume)
        self.cancel_button.clicked.connect(self.cancel)
        self.report_button.clicked.connect(self.open_report)
        context.dataset_changed.connect(self._on_dataset_changed)
        self._set_busy(False)

    # ---- table
    def _set(self, row: int, column: int, text: str) -> None:
        self.table.setItem(row, column, QTableWidgetItem(text))

    def cell(self, row: int, column: int) -> str:
        item = self.table.item(row, column)
        return item.text() if item is not None else ""

    def _clear(self) -> None:
        for row in range(len(RUNG_NAMES)):
            for column in range(1, len(COLUMNS)):
                self._set(row, column, "pending" if column == 1 else "")
        self.curves.clear()
        self.confusions.clear()

    @Slot(object)
    def _on_event(self, event) -> None:
        from engine.events import EpochEnded, Status, StudyRungFinished, StudyRungStarted  # noqa: PLC0415

        if isinstance(event, StudyRungStarted):
            self._set(event.index - 1, 1, event.status)
            self.folder = str(Path(event.run_dir).parent.parent)
            self._running_rung = event.name
            self.status_label.setText(f"Rung {event.index}/{event.total}: {event.name} — {event.status}")
            if event.val_accuracy:  # a resumed rung: its epochs before the interruption
                self.curves.set_curve(event.name, event.val_accuracy)
            if event.reason:  # a skipped rung says why in its row, as an opened study.json does
                self._set(event.index - 1, 2, event.reason)
        elif isinstance(event, EpochEnded):
            if self._running_rung is not None and "val_accuracy" in event.metrics:
                self.curves.add_point(self._running_rung, event.epoch, event.metrics["val_accuracy"])
        elif isinstance(event, StudyRungFinished):
            self._running_rung = None
            self._show_rung(event.index - 1, event.result)
            self._show_comparisons(event.comparisons)
        elif isinstance(event, Status):
            self.status_label.setText(event.message)

    def _show_rung(self, row: int, r: dict, classes: list[str] | None = None) -> None:
        """A rung's entry of study.json: its row, its validation curve, its confusion matrix."""
        self._set(row, 1, r["status"])
        if r["status"] != "finished":
            self._set(row, 2, r.get("reason", ""))
            return
        self._set(row, 2, f"{r['test_accuracy']:.3f}")
        self._set(row, 3, f"{r['ci95'][0]:.3f}–{r['ci95'][1]:.3f}")
        from engine.study.report import tta_cell  # noqa: PLC0415

        self._set(row, TTA_COLUMN, tta_cell(r))  # its own column, never instead of the plain figure
        self._set(row, 5, ", ".join(f"{k} {v:.2f}" for k, v in r["per_class_f1"].items()))
        self._set(row, 6, str(r["epochs"]))
        self._set(row, 7, f"{r.get('train_seconds', 0):.0f}")
        name = RUNG_NAMES[row]
        if r.get("val_accuracy"):
            self.curves.set_curve(name, r["val_accuracy"])
        if r.get("confusion_matrix"):
            classes = r.get("classes") or classes or [str(i) for i in range(len(r["confusion_matrix"]))]
            self.confusions.set_matrix(name, classes, r["confusion_matrix"])

    def _show_comparisons(self, comparisons: list[dict]) -> None:
        for comparison in comparisons or []:
            if comparison["kind"] != "previous" or comparison["a"] not in RUNG_NAMES:
                continue
            self._set(RUNG_NAMES.index(comparison["a"]), PREVIOUS_COLUMN,
                      f"{comparison['verdict']} (p = {comparison['p_value']:.2g})")

    def show_study(self, folder: str) -> None:
        """Show the study in ``folder`` as its study.json records it (finished or interrupted)."""
        from engine.study.job import read_study  # noqa: PLC0415

        study = read_study(folder)
        self._clear()
        self.folder = str(folder)
        for entry in study["rungs"]:
            if entry["name"] in RUNG_NAMES:
                self._show_rung(RUNG_NAMES.index(entry["name"]), entry, study["dataset"].get("classes"))
        self._show_comparisons(study.get("comparisons", []))
        self.status_label.setText(f"Study {study['settings']['profile']} on {study['dataset']['root']}: {folder}")
        self._set_busy(self._job is not None and self._job.running)

    @Slot()
    def choose_study(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a study folder")
        if not folder:
            return
        from engine.errors import ConvScopeError  # noqa: PLC0415

        try:
            self.show_study(folder)
        except ConvScopeError as error:
            QMessageBox.warning(self, "Not a study", str(error))

    # ---- job
    def _set_busy(self, busy: bool) -> None:
        ready = self.context.dataset is not None
        self.start_button.setEnabled(ready and not busy)
        self.profile_combo.setEnabled(not busy)
        self.open_button.setEnabled(not busy)
        self.resume_button.setEnabled(not busy and self._resumable())
        self.cancel_button.setEnabled(busy)
        self.report_button.setEnabled(not busy and self.report_path() is not None)

    @Slot(object)
    def _on_dataset_changed(self, scan) -> None:
        self.intro.setText(f"Dataset: <b>{Path(scan.root).name}</b> — {scan.num_images} images, "
                           f"{len(scan.classes)} classes. Run the study to compare the book's five ways to train.")
        self._set_busy(self._job is not None and self._job.running)

    def report_path(self) -> Path | None:
        if self.folder and (Path(self.folder) / "report.html").is_file():
            return Path(self.folder) / "report.html"
        return None

    def _resumable(self) -> bool:
        from engine.study.job import resumable  # noqa: PLC0415

        return self.folder is not None and resumable(self.folder)

    @Slot()
    def resume(self) -> JobHandle | None:
        """Continue the shown study: the table, curves and matrices fill again from its events."""
        if self.folder is None:
            return None
        from engine.study.config import StudyConfig  # noqa: PLC0415

        config = StudyConfig(resume=self.folder)
        self._clear()
        return self._watch(self.context.runner.start_process("Study", self.job_target, (config,), group=GROUP))

    @Slot()
    def start(self) -> JobHandle | None:
        dataset = self.context.dataset
        if dataset is None:
            return None
        from engine.study.config import StudyConfig  # noqa: PLC0415

        config = StudyConfig(data=dataset.root, profile=self.profile_combo.currentData(),
                             seed=self.context.settings.value("dataset/seed", 0, int))
        self._clear()
        return self._watch(self.context.runner.start_process("Study", self.job_target, (config,), group=GROUP))

    @Slot(object)
    def _on_finished(self, result) -> None:
        if self.sender() is not self._job:
            return
        self.folder = result.folder
        self._show_comparisons(getattr(result, "comparisons", []))
        self.status_label.setText(f"Study {result.status}: {result.folder}")
        self.context.runs_changed.emit()

    @Slot()
    def _on_ended(self) -> None:
        if self.sender() is not self._job:
            return
        self._set_busy(False)
        self.done.emit()

    @Slot()
    def open_report(self) -> None:
        path = self.report_path()
        if path is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
