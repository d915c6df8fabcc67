"""Dataset tab: choose or drop a folder, see what the scan found (classes and counts, thumbnails,
files set aside and why, damaged files kept, the split) and preview an augmentation preset on one image."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.jobs import JobHandle
from app.widgets.augment_preview import AugmentationPreview
from app.widgets.job_progress import JobProgress
from app.widgets.tables import read_only_table
from app.widgets.plots import ClassCountChart
from app.widgets.thumbnails import ThumbnailModel, caption_for, path_slot, thumbnail_view

@dataclass
class DatasetViewModel:
    """What the tab shows, independent of widgets."""

    folder: str = ""
    scan: object | None = None  # engine.data.scan.ScanResult
    split_sizes: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    validation_fraction: float = 0.25
    test_fraction: float = 0.25

    def class_items(self, class_index: int) -> list[str]:
        if self.scan is None:
            return []
        return [p for items in self.scan.files.values() for p, label in items if label == class_index]


class DatasetTab(QWidget):
    title = "Dataset"
    done = Signal()  # a scan ended (tests and screenshots wait on it)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.model = DatasetViewModel()
        self.model.seed = context.settings.value("dataset/seed", 0, int)
        self._job: JobHandle | None = None
        self.setAcceptDrops(True)
        self._build()

    # ---- layout
    def _build(self) -> None:
        root = QVBoxLayout(self)
        top = QHBoxLayout()
        self.folder_edit = QLineEdit()
        self.folder_edit.setReadOnly(True)
        self.folder_edit.setPlaceholderText("Choose a folder with one sub-folder per class (or train/validation/test), or drop it here")
        self.choose_button = QPushButton("Choose folder…")
        self.choose_button.setToolTip("Open a dataset folder (Ctrl+O)")
        self.choose_button.clicked.connect(self.choose_folder)
        self.rescan_button = QPushButton("Rescan")
        self.rescan_button.clicked.connect(self.rescan)
        self.reveal_button = QPushButton("Reveal in file manager")
        self.reveal_button.clicked.connect(self.reveal_folder)
        top.addWidget(QLabel("Folder:"))
        top.addWidget(self.folder_edit, 1)
        for button in (self.choose_button, self.rescan_button, self.reveal_button):
            top.addWidget(button)
        root.addLayout(top)
        self.progress = JobProgress(self.context.runner, "dataset", self)
        root.addWidget(self.progress)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        # left column: counts, summary, split
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        self.chart = ClassCountChart()
        self.chart.setMinimumHeight(180)
        left_layout.addWidget(self.chart, 3)
        self.summary_label = QLabel("No dataset yet.")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        left_layout.addWidget(self.summary_label)
        split_box = QGroupBox("Split (stratified, fixed by the seed)")
        split_form = QFormLayout(split_box)
        self.validation_spin = QDoubleSpinBox()
        self.validation_spin.setRange(0.05, 0.5)
        self.validation_spin.setSingleStep(0.05)
        self.validation_spin.setValue(self.model.validation_fraction)
        self.test_spin = QDoubleSpinBox()
        self.test_spin.setRange(0.0, 0.5)
        self.test_spin.setSingleStep(0.05)
        self.test_spin.setValue(self.model.test_fraction)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(self.model.seed)
        for spin in (self.validation_spin, self.test_spin, self.seed_spin):
            spin.valueChanged.connect(self._update_split)
        self.split_label = QLabel("—")
        split_form.addRow("Validation fraction", self.validation_spin)
        split_form.addRow("Test fraction", self.test_spin)
        split_form.addRow("Seed", self.seed_spin)
        split_form.addRow("Sizes", self.split_label)
        left_layout.addWidget(split_box)
        unusable_box = QGroupBox("Set aside (never deleted)")
        unusable_layout = QVBoxLayout(unusable_box)
        self.unusable_table = read_only_table(["File", "Reason"], stretch=(0, 1))
        self.unusable_table.doubleClicked.connect(self._reveal_selected_issue)
        self.ignored_label = QLabel("")
        self.ignored_label.setWordWrap(True)
        unusable_layout.addWidget(self.unusable_table)
        unusable_layout.addWidget(self.ignored_label)
        left_layout.addWidget(unusable_box, 2)
        self.damaged_box = QGroupBox("Decoded with warnings (kept in the dataset)")
        self.damaged_box.setToolTip("These JPEGs are damaged (\"Corrupt JPEG data\") but decode: they are used for "
                                    "training and may look garbled. Replace them if you have a clean copy.")
        damaged_layout = QVBoxLayout(self.damaged_box)
        self.damaged_table = read_only_table(["File", "Warning"], stretch=(0, 1))
        self.damaged_table.doubleClicked.connect(self._reveal_selected_issue)
        damaged_layout.addWidget(self.damaged_table)
        self.damaged_box.setVisible(False)
        left_layout.addWidget(self.damaged_box, 1)
        splitter.addWidget(left)

        # middle: thumbnails per class
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 0, 0, 0)
        class_row = QHBoxLayout()
        class_row.addWidget(QLabel("Class:"))
        self.class_combo = QComboBox()
        self.class_combo.currentIndexChanged.connect(self._show_class)
        class_row.addWidget(self.class_combo, 1)
        middle_layout.addLayout(class_row)
        self.thumbnails = ThumbnailModel(self)
        self.thumb_view = thumbnail_view(self.thumbnails, self.context.image_chosen.emit)
        self.thumb_view.setLayoutMode(QListView.LayoutMode.Batched)
        self.thumb_view.setBatchSize(200)
        self.thumb_view.clicked.connect(path_slot(self.set_preview_image))
        middle_layout.addWidget(self.thumb_view, 1)
        splitter.addWidget(middle)

        self.preview = AugmentationPreview(self.context)  # right: augmentation preview
        splitter.addWidget(self.preview)
        splitter.setSizes([420, 430, 380])
        root.addWidget(splitter, 1)

    # ---- actions
    @Slot()
    def choose_folder(self) -> None:
        start = self.context.settings.value("folders/dataset", str(Path.home()), str)
        folder = QFileDialog.getExistingDirectory(self, "Choose a dataset folder", start)
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str) -> JobHandle:
        """Scan ``folder`` in the job runner (the tab's previous scan is cancelled)."""
        folder = os.path.abspath(folder)
        self.model.folder = folder
        self.folder_edit.setText(folder)
        self.context.settings.set_value("folders/dataset", os.path.dirname(folder))

        def job(emit, cancel):
            from engine.data.scan import ScanConfig, scan  # noqa: PLC0415

            config = ScanConfig(root=folder)
            config.validate()
            return scan(config, emit=emit, cancel=cancel)

        self._set_busy(True)
        self._job = self.context.runner.start("Scanning dataset", job, group="dataset")
        self._job.finished.connect(self._on_scanned)
        self._job.ended.connect(self._on_scan_ended)
        return self._job

    @Slot()
    def rescan(self) -> None:
        if self.model.folder:
            self.open_folder(self.model.folder)

    @Slot()
    def cancel(self) -> None:
        self.context.runner.cancel_group("dataset")
        self.context.runner.cancel_group("augmentation preview")

    @Slot()
    def reveal_folder(self, path: str | None = None) -> None:
        target = path or self.model.folder
        if target:
            folder = target if os.path.isdir(target) else os.path.dirname(target)
            QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    @Slot()
    def _reveal_selected_issue(self) -> None:
        table = self.damaged_table if self.sender() is self.damaged_table else self.unusable_table
        item = table.item(table.currentRow(), 0)
        if item is not None:
            self.reveal_folder(item.data(Qt.ItemDataRole.UserRole))

    def _set_busy(self, busy: bool) -> None:
        for widget in (self.choose_button, self.rescan_button, self.validation_spin, self.test_spin, self.seed_spin):
            widget.setEnabled(not busy)

    # ---- results
    @Slot(object)
    def _on_scanned(self, result) -> None:
        self.model.scan = result
        self.context.dataset = result
        self.context.settings.add_recent("datasets", result.root)
        self.chart.set_counts(result.counts, result.classes)
        size_text = _describe_sizes(result.size_summary or {})
        warnings = "".join(f"<br>⚠ {w}" for w in result.warnings)
        layout = "class folders" if result.layout == "classes" else "already split (train/validation/test)"
        self.summary_label.setText(
            f"<b>{result.num_images}</b> usable images in <b>{len(result.classes)}</b> classes ({layout})."
            f"{size_text}{warnings}")
        _fill_issue_table(self.unusable_table, result.unusable, result.root)
        damaged = getattr(result, "decoded_with_warnings", [])
        _fill_issue_table(self.damaged_table, damaged, result.root)
        self.damaged_box.setVisible(bool(damaged))
        ignored = len(result.ignored)
        self.ignored_label.setText(
            f"{len(result.unusable)} unusable file(s) set aside; {ignored} non-image file(s) ignored. "
            "Double-click a row to open its folder." if (result.unusable or ignored) else "Every file is usable.")
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        for index, name in enumerate(result.classes):
            self.class_combo.addItem(f"{name} ({self.chart.counts.get(name, 0)})", index)
        self.class_combo.blockSignals(False)
        self._show_class(0)
        self._update_split()
        self.context.dataset_changed.emit(result)
        first = self.model.class_items(0)
        if first:
            self.set_preview_image(first[0])

    @Slot()
    def _on_scan_ended(self) -> None:
        self._set_busy(False)
        self.done.emit()

    @Slot(int)
    def _show_class(self, index: int) -> None:
        if self.model.scan is None or index < 0:
            self.thumbnails.set_items([])
            return
        class_index = self.class_combo.itemData(index)
        if class_index is None:
            class_index = index
        self.thumbnails.set_items([(p, caption_for(p)) for p in self.model.class_items(class_index)])

    @Slot()
    def _update_split(self) -> None:
        self.model.validation_fraction = self.validation_spin.value()
        self.model.test_fraction = self.test_spin.value()
        self.model.seed = self.seed_spin.value()
        self.context.settings.set_value("dataset/seed", self.model.seed)
        if self.model.scan is None:
            return
        try:
            from engine.data.split import make_split  # noqa: PLC0415  (no TensorFlow; fast)

            split = make_split(self.model.scan, self.model.validation_fraction, self.model.test_fraction,
                               seed=self.model.seed)
        except Exception as error:  # noqa: BLE001 - a setting the user can fix: show it inline
            self.split_label.setText(f"<span style='color:#d94848'>{error}</span>")
            return
        self.model.split_sizes = {"train": len(split.train), "validation": len(split.validation),
                                  "test": len(split.test)}
        note = " (the folder's own subsets)" if self.model.scan.layout == "split" else f" (seed {self.model.seed})"
        self.split_label.setText(
            f"train {len(split.train)} · validation {len(split.validation)} · test {len(split.test)}{note}")

    # ---- thumbnails
    def set_preview_image(self, path: str) -> None:
        self.preview.set_image(path)

    # ---- drag and drop
    def handle_drop(self, paths: list[str]) -> bool:
        folders = [p for p in paths if os.path.isdir(p)]
        if len(folders) != 1:
            return False
        self.open_folder(folders[0])
        return True

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        if len(urls) == 1 and urls[0].isLocalFile() and os.path.isdir(urls[0].toLocalFile()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if self.handle_drop(paths):
            event.acceptProposedAction()

    def save_settings(self) -> None:
        self.context.settings.set_value("dataset/seed", self.seed_spin.value())


def _fill_issue_table(table, issues, root: str) -> None:
    """One row per file issue: the path relative to the dataset (full path as tooltip and data), the reason."""
    table.setRowCount(len(issues))
    for row, issue in enumerate(issues):
        name_item = QTableWidgetItem(os.path.relpath(issue.path, root))
        name_item.setData(Qt.ItemDataRole.UserRole, issue.path)
        name_item.setToolTip(issue.path)
        reason_item = QTableWidgetItem(issue.reason)
        reason_item.setToolTip(issue.reason)
        table.setItem(row, 0, name_item)
        table.setItem(row, 1, reason_item)


def _describe_sizes(summary: dict) -> str:
    """One line about the image sizes and formats the scan found."""
    width, height = summary.get("width") or {}, summary.get("height") or {}
    if not width or not height:
        return ""
    text = (f"<br>Sizes: {width.get('min')}×{height.get('min')} to {width.get('max')}×{height.get('max')} px "
            f"(median {width.get('median'):g}×{height.get('median'):g})")
    formats = summary.get("formats") or {}
    if formats:
        text += " · " + ", ".join(f"{n} {fmt}" for fmt, n in formats.items())
    modes = summary.get("modes") or {}
    if modes:
        text += " · " + ", ".join(f"{n} {mode}" for mode, n in modes.items())
    return text
