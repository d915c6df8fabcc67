"""The Training tab's list of runs: their status and best accuracy, ticks to overlay their curves,
resume of an interrupted run, "open in the Evaluation tab" (``context.open_run``) and "export" (``context.export_model``)."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.widgets.tables import read_only_table
from app.widgets.plots import metric_kind

COLUMNS = ["Run", "Strategy", "Model", "Status", "Epochs", "Best val. acc."]
_PATH_ROLE = Qt.ItemDataRole.UserRole
_STATUS_ROLE = Qt.ItemDataRole.UserRole + 1


class RunsPanel(QGroupBox):
    """The runs under the settings' runs folder, newest first."""

    overlays_changed = Signal(object)  # {run name: {metric: values}} of the ticked runs
    resume_requested = Signal(str)  # run folder

    def __init__(self, context, runs_root, parent=None) -> None:
        super().__init__("Runs — tick several to compare their curves", parent)
        self.context = context
        self._runs_root = runs_root  # callable: the runs folder now
        self._busy = False
        self._stale = False
        self.table = read_only_table(COLUMNS)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.itemSelectionChanged.connect(self.update_buttons)
        self.table.doubleClicked.connect(self.evaluate_selected)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue an interrupted run after its last finished epoch")
        self.resume_button.clicked.connect(self.resume_selected)
        self.evaluate_button = QPushButton("Evaluate…")
        self.evaluate_button.setToolTip("Open the selected run in the Evaluation tab")
        self.evaluate_button.clicked.connect(self.evaluate_selected)
        buttons = QHBoxLayout()
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Export the selected run's model (SavedModel, LiteRT, ONNX, .keras)")
        self.export_button.clicked.connect(self.export_selected)
        for button in (self.refresh_button, self.resume_button, self.evaluate_button, self.export_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        context.tf_ready.connect(self.update_buttons)
        context.runs_changed.connect(self._on_runs_changed)

    def set_busy(self, busy: bool) -> None:
        """While the tab trains: no resume, and no re-reading of every run folder on the GUI thread."""
        self._busy = busy
        if not busy and self._stale:
            self.refresh()
        self.update_buttons()

    # ---- reading the runs
    @Slot()
    def _on_runs_changed(self) -> None:
        """Re-reading the list reads every run folder (and the ticked runs' histories) from disk on
        the GUI thread: not while the tab trains (its own run gets a row from the RunStarted event,
        and the list is re-read when the job ends) and not while hidden (re-read when shown)."""
        if self._busy or not self.isVisible():
            self._stale = True
        else:
            self.refresh()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._stale and not self._busy:
            self.refresh()

    @Slot()
    def refresh(self) -> None:
        self._stale = False
        from engine.train.rundir import list_runs  # noqa: PLC0415

        try:
            runs = list_runs(self._runs_root())
        except Exception:  # noqa: BLE001 - a missing runs folder is an empty list
            runs = []
        checked = set(self.checked_runs())
        self.table.blockSignals(True)
        self.table.setRowCount(len(runs))
        for row, info in enumerate(runs):
            acc = "—" if info.best_val_accuracy is None else f"{info.best_val_accuracy:.3f}"
            self._fill_row(row, info.path, info.status, info.path in checked,
                           [info.strategy, info.model, info.status, f"{info.epochs_done}/{info.epochs}", acc])
        self.table.blockSignals(False)
        self.update_buttons()
        self._update_overlays()

    def _fill_row(self, row: int, run_dir: str, status: str, checked: bool, cells: list[str]) -> None:
        name = QTableWidgetItem(os.path.basename(run_dir))
        name.setData(_PATH_ROLE, run_dir)
        name.setData(_STATUS_ROLE, status)
        name.setToolTip(run_dir)
        name.setFlags(name.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        name.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.table.setItem(row, 0, name)
        for column, text in enumerate(cells, start=1):
            self.table.setItem(row, column, QTableWidgetItem(text))

    def _row_of(self, run_dir: str) -> int:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(_PATH_ROLE) == run_dir:
                return row
        return -1

    # ---- the running run, from its events alone (no disk reads)
    def show_running(self, run_dir: str, strategy: str, model: str, epochs: int) -> None:
        """A row for the run that just started (a resumed run is listed already)."""
        if self._row_of(run_dir) >= 0:
            return
        self.table.blockSignals(True)
        self.table.insertRow(0)
        self._fill_row(0, run_dir, "running", False, [strategy, model, "running", f"0/{epochs}", "—"])
        self.table.blockSignals(False)

    def update_running(self, run_dir: str, epoch: int, epochs: int) -> None:
        row = self._row_of(run_dir)
        cell = self.table.item(row, 4) if row >= 0 else None
        if cell is not None:
            cell.setText(f"{epoch}/{epochs}")

    # ---- ticks and overlays
    def checked_runs(self) -> list[str]:
        items = (self.table.item(row, 0) for row in range(self.table.rowCount()))
        return [item.data(_PATH_ROLE) for item in items
                if item is not None and item.checkState() == Qt.CheckState.Checked]

    def set_run_checked(self, run_dir: str, checked: bool = True) -> None:
        row = self._row_of(run_dir)
        if row >= 0:
            self.table.item(row, 0).setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    @Slot(QTableWidgetItem)
    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() == 0:
            self._update_overlays()

    def _update_overlays(self) -> None:
        from engine.train.rundir import read_history  # noqa: PLC0415

        runs = {}
        for path in self.checked_runs():
            try:
                history = read_history(path)
            except Exception:  # noqa: BLE001
                continue
            runs[os.path.basename(path)] = {k: v for k, v in history.items() if metric_kind(k)}
        self.overlays_changed.emit(runs)

    # ---- the selected run
    def selected_run(self) -> tuple[str, str] | None:
        """(run folder, status) of the selected row."""
        row = self.table.currentRow()
        item = self.table.item(row, 0) if row >= 0 else None
        if item is None:
            return None
        return item.data(_PATH_ROLE), item.data(_STATUS_ROLE)

    @Slot()
    def update_buttons(self) -> None:
        selected = self.selected_run()
        resumable = selected is not None and selected[1] != "finished"
        self.resume_button.setEnabled(resumable and self.context.tf_is_ready and not self._busy)
        self.evaluate_button.setEnabled(selected is not None)
        self.export_button.setEnabled(selected is not None)

    @Slot()
    def resume_selected(self) -> None:
        selected = self.selected_run()
        if selected:
            self.resume_requested.emit(selected[0])

    @Slot()
    def export_selected(self) -> None:
        selected = self.selected_run()
        if selected:
            self.context.export_model.emit(selected[0])

    @Slot()
    def evaluate_selected(self, *_args) -> None:
        selected = self.selected_run()
        if selected:
            self.context.show_tab.emit("Evaluation")
            self.context.open_run.emit(selected[0])
