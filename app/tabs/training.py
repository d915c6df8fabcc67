"""Training tab: the four strategies of chapter 5, live curves (coalesced redraws, optional
smoothing), past runs overlaid for comparison, resume of interrupted runs, and warnings."""

from __future__ import annotations

import html

import os

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.context import AppContext
from app.widgets.tf_gate import TfGate
from app.jobs import JobHandle
from app.widgets.job_progress import JobProgress
from app.widgets.plots import TrainingCurves, metric_kind
from engine.outcome import Outcome

STRATEGY_LABELS = {
    "scratch": "Small convnet from scratch",
    "features": "Feature extraction (cached features)",
    "features-augmented": "Feature extraction with augmentation",
    "finetune": "Fine-tuning",
}
GROUP = "training"


class TrainingTab(QWidget):
    title = "Training"
    done = Signal()  # a training job ended (any outcome)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self._job: JobHandle | None = None
        self._layers_job: JobHandle | None = None
        self.current_run: str | None = None
        self.event_count = 0
        self._build()
        for widget in [self.start_button, self.finetune_combo]:
            self.tf_gate.add(widget)
        self._load_settings()
        context.dataset_changed.connect(self._on_dataset_changed)
        context.tf_ready.connect(self._on_tf_ready)
        context.tf_ready.connect(self._update_run_buttons)
        context.runs_changed.connect(self._on_runs_changed)
        self._runs_stale = False
        self._on_strategy_changed()
        self.refresh_runs()

    # ---- layout
    def _build(self) -> None:
        root = QHBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(splitter)

        form_box = QGroupBox("Settings")
        form_layout = QVBoxLayout(form_box)
        self.data_label = QLabel("No dataset: open one in the Dataset tab.")
        self.data_label.setWordWrap(True)
        form_layout.addWidget(self.data_label)
        form = self._form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.strategy_combo = QComboBox()
        from engine.train.config import STRATEGIES, STRATEGY_HELP  # noqa: PLC0415 (no TensorFlow)

        for name in STRATEGIES:
            self.strategy_combo.addItem(STRATEGY_LABELS.get(name, name), name)
            self.strategy_combo.setItemData(self.strategy_combo.count() - 1, STRATEGY_HELP.get(name, ""),
                                            Qt.ItemDataRole.ToolTipRole)
        self.strategy_combo.currentIndexChanged.connect(self._on_strategy_changed)
        form.addRow("Strategy", self.strategy_combo)
        self.strategy_help = QLabel()
        self.strategy_help.setWordWrap(True)
        form.addRow(self.strategy_help)
        self.base_combo = QComboBox()
        from engine.bases.registry import all_bases  # noqa: PLC0415 (no TensorFlow)

        for spec in all_bases():
            try:
                status = spec.weights_status()
                weights = "weights ready" if status.present else f"no weights: {status.source}"
            except Exception as error:  # noqa: BLE001 - a registry entry must not break the form
                weights = f"weights unknown ({error})"
            self.base_combo.addItem(spec.label, spec.name)
            self.base_combo.setItemData(self.base_combo.count() - 1, f"{spec.label}\n{weights}",
                                        Qt.ItemDataRole.ToolTipRole)
        self.base_combo.currentIndexChanged.connect(self._on_base_changed)
        form.addRow("Base", self.base_combo)
        self.base_status = QLabel()
        self.base_status.setWordWrap(True)
        form.addRow(self.base_status)
        self.preset_combo = QComboBox()
        from engine.models.presets import PRESETS  # noqa: PLC0415 (no TensorFlow)

        for name, info in PRESETS.items():
            self.preset_combo.addItem(name, name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, getattr(info, "description", ""),
                                          Qt.ItemDataRole.ToolTipRole)
        form.addRow("Model preset", self.preset_combo)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        form.addRow("Epochs", self.epochs_spin)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 4096)
        form.addRow("Batch size", self.batch_spin)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(0, 1024)
        self.size_spin.setSpecialValueText("default")
        self.size_spin.setSuffix(" px")
        form.addRow("Image size", self.size_spin)
        self.lr_edit = QLineEdit()
        self.lr_edit.setPlaceholderText("default for the strategy")
        form.addRow("Learning rate", self.lr_edit)
        augment_row = QHBoxLayout()
        self.augment_check = QCheckBox("on")
        self.augmentation_combo = QComboBox()
        try:
            from engine.data.augment import AUGMENTATION_PRESETS  # noqa: PLC0415
        except ImportError:
            AUGMENTATION_PRESETS = {"book": "", "mild": "", "none": ""}  # noqa: N806
        for name, description in AUGMENTATION_PRESETS.items():
            self.augmentation_combo.addItem(name, name)
            self.augmentation_combo.setItemData(self.augmentation_combo.count() - 1, description,
                                                Qt.ItemDataRole.ToolTipRole)
        augment_row.addWidget(self.augment_check)
        augment_row.addWidget(self.augmentation_combo, 1)
        form.addRow("Augmentation", augment_row)
        self.finetune_combo = QComboBox()
        self.finetune_combo.addItem("base default", None)
        self.finetune_combo.setToolTip("The layer of the base that fine-tuning unfreezes from")
        form.addRow("Fine-tune from", self.finetune_combo)
        self.limit_spin = QSpinBox()
        self.limit_spin.setRange(0, 100000)
        self.limit_spin.setSpecialValueText("all")
        self.limit_spin.setToolTip("Use at most this many images per class (quick experiments)")
        form.addRow("Images per class", self.limit_spin)
        form_layout.addLayout(form)
        self.tf_gate = TfGate(self.context, parent=self, text="Loading TensorFlow…")
        form_layout.addWidget(self.tf_gate)
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start training (Ctrl+R)")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current batch; last.keras is kept (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        form_layout.addLayout(buttons)
        form_layout.addStretch(1)
        form_box.setMinimumWidth(390)
        splitter.addWidget(form_box)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        self.progress = JobProgress(self.context.runner, GROUP, self)
        right_layout.addWidget(self.progress)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        right_layout.addWidget(self.status_label)
        self.curves = TrainingCurves()
        self.curves.setMinimumHeight(260)
        right_layout.addWidget(self.curves, 3)
        curve_row = QHBoxLayout()
        self.smooth_check = QCheckBox("Smooth curves (exponential, factor 0.8)")
        self.smooth_check.toggled.connect(self.curves.set_smoothing)
        curve_row.addWidget(self.smooth_check)
        curve_row.addStretch(1)
        right_layout.addLayout(curve_row)
        self.warnings_list = QListWidget()
        self.warnings_list.setMaximumHeight(70)
        self.warnings_list.setVisible(False)
        right_layout.addWidget(self.warnings_list)
        runs_box = QGroupBox("Runs — tick several to compare their curves")
        runs_layout = QVBoxLayout(runs_box)
        self.runs_table = QTableWidget(0, 6)
        self.runs_table.setHorizontalHeaderLabels(["Run", "Strategy", "Model", "Status", "Epochs", "Best val. acc."])
        header = self.runs_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, 6):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.runs_table.verticalHeader().setVisible(False)
        self.runs_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.runs_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.runs_table.itemChanged.connect(self._on_run_item_changed)
        self.runs_table.itemSelectionChanged.connect(self._update_run_buttons)
        self.runs_table.doubleClicked.connect(self.evaluate_selected)
        runs_layout.addWidget(self.runs_table)
        run_buttons = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh_runs)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue an interrupted run after its last finished epoch")
        self.resume_button.clicked.connect(self.resume_selected)
        self.evaluate_button = QPushButton("Evaluate…")
        self.evaluate_button.setToolTip("Open the selected run in the Evaluation tab")
        self.evaluate_button.clicked.connect(self.evaluate_selected)
        for button in (self.refresh_button, self.resume_button, self.evaluate_button):
            run_buttons.addWidget(button)
        run_buttons.addStretch(1)
        runs_layout.addLayout(run_buttons)
        right_layout.addWidget(runs_box, 2)
        splitter.addWidget(right)
        splitter.setSizes([390, 890])
        self._form_widgets = [self.strategy_combo, self.base_combo, self.preset_combo, self.epochs_spin,
                              self.batch_spin, self.size_spin, self.lr_edit, self.augment_check,
                              self.augmentation_combo, self.limit_spin]

    # ---- settings persistence
    def _load_settings(self) -> None:
        s = self.context.settings
        self._select_data(self.strategy_combo, s.value("training/strategy", "scratch", str))
        self._select_data(self.base_combo, s.value("training/base", "efficientnet-lite0", str))
        self._select_data(self.preset_combo, s.value("training/preset", "book-scratch", str))
        self.epochs_spin.setValue(s.value("training/epochs", 30, int))
        self.batch_spin.setValue(s.value("training/batch_size", 32, int))
        self.size_spin.setValue(s.value("training/image_size", 0, int))
        self.lr_edit.setText(s.value("training/learning_rate", "", str))
        self.augment_check.setChecked(s.value("training/augment", False, bool))
        self._select_data(self.augmentation_combo, s.value("training/augmentation", "book", str))
        self.limit_spin.setValue(s.value("training/max_per_class", 0, int))
        self.smooth_check.setChecked(s.value("training/smooth", False, bool))

    def save_settings(self) -> None:
        values = self.form_config()
        s = self.context.settings
        s.set_value("training/strategy", values.strategy)
        s.set_value("training/base", values.base)
        s.set_value("training/preset", values.preset)
        s.set_value("training/epochs", values.epochs)
        s.set_value("training/batch_size", values.batch_size)
        s.set_value("training/image_size", values.image_size or 0)
        s.set_value("training/learning_rate", self.lr_edit.text().strip())
        s.set_value("training/augment", self.augment_check.isChecked())
        s.set_value("training/augmentation", values.augmentation)
        s.set_value("training/max_per_class", values.max_per_class or 0)
        s.set_value("training/smooth", self.smooth_check.isChecked())

    @staticmethod
    def _select_data(combo: QComboBox, value) -> None:
        index = combo.findData(value)
        if index >= 0:
            combo.setCurrentIndex(index)

    # ---- form
    def form_config(self):
        """The form's values as the engine's ``TrainConfig`` (no TensorFlow import). The form's own
        rules: no augmentation for cached features, a fine-tuning start layer only for fine-tuning,
        TensorBoard off (the tab draws the curves), the Dataset tab's seed."""
        from engine.train.config import TrainConfig  # noqa: PLC0415

        text = self.lr_edit.text().strip()
        try:
            learning_rate = float(text) if text else None
        except ValueError:
            learning_rate = float("nan")  # start() names the fix
        dataset = self.context.dataset
        strategy = self.strategy_combo.currentData()
        return TrainConfig(
            data=dataset.root if dataset is not None else "",
            strategy=strategy,
            base=self.base_combo.currentData() or "efficientnet-lite0",
            preset=self.preset_combo.currentData() or "book-scratch",
            epochs=self.epochs_spin.value(),
            batch_size=self.batch_spin.value(),
            image_size=self.size_spin.value() or None,
            learning_rate=learning_rate,
            augment=False if strategy == "features" else self.augment_check.isChecked(),
            augmentation=self.augmentation_combo.currentData() or "mild",
            finetune_from=self.finetune_combo.currentData() if strategy == "finetune" else None,
            max_per_class=self.limit_spin.value() or None,
            seed=self.context.settings.value("dataset/seed", 0, int),
            runs_root=self.runs_root(),
            tensorboard=False,
        )

    @Slot()
    def _on_strategy_changed(self, *_args) -> None:
        strategy = self.strategy_combo.currentData()
        from engine.train.config import STRATEGY_HELP  # noqa: PLC0415

        self.strategy_help.setText(STRATEGY_HELP.get(strategy, ""))
        uses_base = strategy != "scratch"
        self.base_combo.setVisible(uses_base)
        self.base_status.setVisible(uses_base)
        self._form_label(self.base_combo).setVisible(uses_base)
        self.preset_combo.setVisible(not uses_base)
        self._form_label(self.preset_combo).setVisible(not uses_base)
        can_augment = strategy != "features"
        self.augment_check.setEnabled(can_augment and not self._busy())
        if strategy in ("features-augmented", "finetune"):
            self.augment_check.setChecked(True)
        elif strategy == "features":
            self.augment_check.setChecked(False)
        finetune = strategy == "finetune"
        self.finetune_combo.setVisible(finetune)
        self._form_label(self.finetune_combo).setVisible(finetune)
        self._on_base_changed()

    def _form_label(self, field_widget) -> QWidget:
        label = self._form.labelForField(field_widget)
        return label if label is not None else QLabel()

    @Slot()
    def _on_base_changed(self, *_args) -> None:
        name = self.base_combo.currentData()
        if not name:
            return
        from engine.bases.registry import get_base  # noqa: PLC0415

        try:
            spec = get_base(name)
            status = spec.weights_status()
            # The combo may elide a long label; the honest description is always readable here.
            text = f"<b>{html.escape(spec.label)}</b><br>"
            text += ("Weights: ready ✓" if status.present
                     else f"<span style='color:#d94848'>No weights: {html.escape(status.source)}</span>")
            self.base_status.setToolTip(status.source)
            self.base_combo.setToolTip(spec.label)
            if spec.attribution:
                text += f"<br><small>{spec.attribution}</small>"
        except Exception as error:  # noqa: BLE001
            text = str(error)
        self.base_status.setText(text)
        # A wrapped rich-text label in a form row gets too little height from heightForWidth:
        # reserve its lines (each <br> line may wrap once in this narrow panel).
        lines = 2 * (text.count("<br>") + 1)
        self.base_status.setMinimumHeight(self.base_status.fontMetrics().lineSpacing() * lines)
        self.finetune_combo.clear()
        self.finetune_combo.addItem("base default", None)
        if self.strategy_combo.currentData() == "finetune" and self.context.tf_is_ready:
            self._load_finetune_layers(name)

    @Slot()
    def _on_tf_ready(self) -> None:
        if self.strategy_combo.currentData() == "finetune":
            self._load_finetune_layers(self.base_combo.currentData())

    def _load_finetune_layers(self, base_name: str) -> None:
        def job(emit, cancel):
            from engine.bases.registry import get_base  # noqa: PLC0415
            from engine.train.strategies import finetune_layer_names  # noqa: PLC0415

            spec = get_base(base_name)
            base = spec.build(include_top=False)
            return base_name, spec.finetune_from, finetune_layer_names(base)

        self._layers_job = self.context.runner.start("Listing the base's layers", job, group="finetune layers")
        self._layers_job.finished.connect(self._on_finetune_layers)

    @Slot(object)
    def _on_finetune_layers(self, result) -> None:
        base_name, default, names = result
        if base_name != self.base_combo.currentData():
            return
        self.finetune_combo.clear()
        self.finetune_combo.addItem(f"base default ({default})", None)
        for name in names:
            self.finetune_combo.addItem(name, name)

    @Slot(object)
    def _on_dataset_changed(self, scan) -> None:
        self.data_label.setText(f"Dataset: <b>{os.path.basename(scan.root)}</b> — {scan.num_images} images, "
                                f"{len(scan.classes)} classes ({', '.join(scan.classes[:6])}"
                                f"{'…' if len(scan.classes) > 6 else ''})")
        self.data_label.setToolTip(scan.root)

    # ---- running
    def _busy(self) -> bool:
        return self._job is not None and self._job.running

    def _set_busy(self, busy: bool) -> None:
        for widget in self._form_widgets:
            widget.setEnabled(not busy)
        if not busy:
            self.augment_check.setEnabled(self.strategy_combo.currentData() != "features")
        self.tf_gate.set_busy(busy)
        self.cancel_button.setEnabled(busy)

    @Slot()
    def start(self) -> JobHandle | None:
        """Start training with the form's settings (the previous training job is cancelled)."""
        if not self.context.tf_is_ready:
            return None
        config = self.form_config()
        self.save_settings()
        lr_text = self.lr_edit.text().strip()
        from engine.errors import ConvScopeError, InvalidSetting  # noqa: PLC0415

        try:  # settings errors are found here, without starting a process for them
            if config.learning_rate is not None and config.learning_rate != config.learning_rate:
                raise InvalidSetting(f"learning rate '{lr_text}' is not a number",
                                     "type one such as 1e-4, or leave it empty for the default")
            config.validate()
        except ConvScopeError as error:
            return self._start_job("Training", _failing_job(error))
        # Training runs in a child process (engine.worker): its TensorFlow work holds that
        # process's GIL, not the GUI's.
        return self._start_job("Training", ("engine.train.strategies:train", (config,)))

    def resume(self, run_dir: str) -> JobHandle | None:
        if not self.context.tf_is_ready:
            return None
        from engine.train.rundir import read_history  # noqa: PLC0415

        handle = self._start_job("Resuming training", ("engine.train.strategies:resume", (str(run_dir),)))
        try:
            self.curves.set_history(read_history(run_dir))
        except Exception:  # noqa: BLE001 - an unreadable history just starts empty curves
            pass
        return handle

    def _start_job(self, name: str, job) -> JobHandle:
        """``job``: ``(target, args)`` for a job process, or a thread job function."""
        self.curves.clear_live()
        self.warnings_list.clear()
        self.warnings_list.setVisible(False)
        self.event_count = 0
        self.status_label.setText("Preparing…")
        if isinstance(job, tuple):  # (target, args): a job process
            self._job = self.context.runner.start_process(name, job[0], job[1], group=GROUP)
        else:
            self._job = self.context.runner.start(name, job, group=GROUP)
        self._job.engine_event.connect(self._on_event)
        self._job.finished.connect(self._on_finished)
        self._job.ended.connect(self._on_ended)
        self._set_busy(True)
        return self._job

    @Slot()
    def cancel(self) -> None:
        self.context.runner.cancel_group(GROUP)

    @Slot(object)
    def _on_event(self, event) -> None:
        from engine.events import (  # noqa: PLC0415
            BatchProgress,
            EpochEnded,
            RunCancelled,
            RunStarted,
            Status,
            Warning_,
        )

        if self.sender() is not self._job:
            return  # a cancelled job's late events
        self.event_count += 1
        if isinstance(event, BatchProgress):
            x = event.epoch - 1 + event.batch / max(event.batches, 1)
            for metric, value in event.metrics.items():
                if not metric.startswith("val_") and metric_kind(metric):
                    self.curves.add_point(metric, x, value)
        elif isinstance(event, EpochEnded):
            for metric, value in event.metrics.items():
                if metric_kind(metric):
                    self.curves.truncate(metric, event.epoch - 1)
                    self.curves.add_point(metric, event.epoch, value)
            self._update_running_run(event)
            shown = ", ".join(f"{k} {v:.3f}" for k, v in event.metrics.items() if metric_kind(k))
            phase = f" ({event.phase})" if event.phase not in ("train", "") else ""
            self.status_label.setText(f"Epoch {event.epoch}/{event.epochs}{phase}: {shown} — {event.seconds:.1f} s")
        elif isinstance(event, RunStarted):
            self.current_run = event.run_dir
            self.status_label.setText(f"Run folder: {event.run_dir}")
            self.curves.set_epochs(event.epochs)
            self._show_running_run(event)
            self.context.runs_changed.emit()
        elif isinstance(event, Warning_):
            self.warnings_list.addItem(f"⚠ {event.message}")
            self.warnings_list.setVisible(True)
            window = self.window()
            if hasattr(window, "statusBar"):
                window.statusBar().showMessage(f"Warning: {event.message}", 15_000)
        elif isinstance(event, RunCancelled):
            self.status_label.setText(f"Cancelled after epoch {event.last_epoch}; {event.run_dir} can be resumed.")
        elif isinstance(event, Status):
            self.status_label.setText(event.message)

    @Slot(object)
    def _on_finished(self, result) -> None:
        if self.sender() is not self._job:
            return
        run_dir = getattr(result, "run_dir", None)
        if run_dir:
            self.current_run = run_dir
            self.context.settings.add_recent("runs", run_dir)
            self.status_label.setText(f"Finished: {run_dir}")
            self.context.run_finished.emit(run_dir)

    @Slot()
    def _on_ended(self) -> None:
        if self.sender() is not self._job:
            return
        self.curves.flush()
        self._set_busy(False)
        if self._job is not None and self._job.outcome == Outcome.CANCELLED and self.current_run:
            self.status_label.setText(f"Cancelled. {self.current_run} keeps last.keras and can be resumed.")
        self.refresh_runs()
        self.done.emit()

    # ---- runs list
    def runs_root(self) -> str:
        from engine.paths import default_runs_dir  # noqa: PLC0415

        return self.context.settings.value("training/runs_root", "", str) or str(default_runs_dir())

    @Slot()
    def _on_runs_changed(self) -> None:
        """Re-reading the list reads every run folder (and the ticked runs' histories) from disk on
        the GUI thread: not while this tab trains (its own run gets a row from the RunStarted event,
        and the list is re-read when the job ends) and not while the tab is hidden (re-read when shown)."""
        if self._busy() or not self.isVisible():
            self._runs_stale = True
        else:
            self.refresh_runs()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._runs_stale and not self._busy():
            self.refresh_runs()

    def _show_running_run(self, event) -> None:
        """A row for the run that just started, from the event alone (no disk reads)."""
        for row in range(self.runs_table.rowCount()):
            item = self.runs_table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == event.run_dir:
                return  # a resumed run is listed already
        self.runs_table.blockSignals(True)
        self.runs_table.insertRow(0)
        name = QTableWidgetItem(os.path.basename(event.run_dir))
        name.setData(Qt.ItemDataRole.UserRole, event.run_dir)
        name.setData(Qt.ItemDataRole.UserRole + 1, "running")
        name.setToolTip(event.run_dir)
        name.setFlags(name.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        name.setCheckState(Qt.CheckState.Unchecked)
        values = self.form_config()
        model = values.preset if event.strategy == "scratch" else values.base
        cells = [name, QTableWidgetItem(event.strategy), QTableWidgetItem(model), QTableWidgetItem("running"),
                 QTableWidgetItem(f"0/{event.epochs}"), QTableWidgetItem("—")]
        for column, item in enumerate(cells):
            self.runs_table.setItem(0, column, item)
        self.runs_table.blockSignals(False)

    def _update_running_run(self, event) -> None:
        """The running run's row follows its epochs (from the EpochEnded event; no disk reads)."""
        for row in range(self.runs_table.rowCount()):
            item = self.runs_table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == self.current_run:
                cell = self.runs_table.item(row, 4)
                if cell is not None:
                    cell.setText(f"{event.epoch}/{event.epochs}")
                return

    @Slot()
    def refresh_runs(self) -> None:
        self._runs_stale = False
        from engine.train.rundir import list_runs  # noqa: PLC0415

        try:
            runs = list_runs(self.runs_root())
        except Exception:  # noqa: BLE001 - a missing runs folder is an empty list
            runs = []
        checked = set(self.checked_runs())
        self.runs_table.blockSignals(True)
        self.runs_table.setRowCount(len(runs))
        for row, info in enumerate(runs):
            name = QTableWidgetItem(info.name)
            name.setData(Qt.ItemDataRole.UserRole, info.path)
            name.setData(Qt.ItemDataRole.UserRole + 1, info.status)
            name.setToolTip(info.path)
            name.setFlags(name.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            name.setCheckState(Qt.CheckState.Checked if info.path in checked else Qt.CheckState.Unchecked)
            acc = "—" if info.best_val_accuracy is None else f"{info.best_val_accuracy:.3f}"
            cells = [name, QTableWidgetItem(info.strategy), QTableWidgetItem(info.model),
                     QTableWidgetItem(info.status), QTableWidgetItem(f"{info.epochs_done}/{info.epochs}"),
                     QTableWidgetItem(acc)]
            for column, item in enumerate(cells):
                self.runs_table.setItem(row, column, item)
        self.runs_table.blockSignals(False)
        self._update_run_buttons()
        self._update_overlays()

    def checked_runs(self) -> list[str]:
        paths = []
        for row in range(self.runs_table.rowCount()):
            item = self.runs_table.item(row, 0)
            if item is not None and item.checkState() == Qt.CheckState.Checked:
                paths.append(item.data(Qt.ItemDataRole.UserRole))
        return paths

    def set_run_checked(self, run_dir: str, checked: bool = True) -> None:
        for row in range(self.runs_table.rowCount()):
            item = self.runs_table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == run_dir:
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    @Slot(QTableWidgetItem)
    def _on_run_item_changed(self, item: QTableWidgetItem) -> None:
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
        self.curves.set_overlays(runs)

    def selected_run(self) -> tuple[str, str] | None:
        row = self.runs_table.currentRow()
        item = self.runs_table.item(row, 0) if row >= 0 else None
        if item is None:
            return None
        return item.data(Qt.ItemDataRole.UserRole), item.data(Qt.ItemDataRole.UserRole + 1)

    @Slot()
    def _update_run_buttons(self) -> None:
        selected = self.selected_run()
        resumable = selected is not None and selected[1] not in ("finished",)
        self.resume_button.setEnabled(resumable and self.context.tf_is_ready and not self._busy())
        self.evaluate_button.setEnabled(selected is not None)

    @Slot()
    def resume_selected(self) -> None:
        selected = self.selected_run()
        if selected:
            self.resume(selected[0])

    @Slot()
    def evaluate_selected(self, *_args) -> None:
        selected = self.selected_run()
        if not selected:
            return
        self.context.show_tab.emit("Evaluation")
        self.context.open_run.emit(selected[0])


def _failing_job(error: Exception):
    """A job that only reports ``error`` (through the runner's one error path)."""

    def job(emit, cancel):
        raise error

    return job
