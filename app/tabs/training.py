"""Training tab: the four strategies of chapter 5, live curves (coalesced redraws, optional
smoothing), past runs overlaid for comparison, resume of interrupted runs, and warnings.

The settings form is :class:`app.tabs.training_form.TrainingForm`, the runs list
:class:`app.widgets.runs_table.RunsPanel`; this module runs the job and draws its events."""

from __future__ import annotations

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QListWidget, QSplitter, QVBoxLayout, QWidget

from app.context import AppContext
from app.jobs import JobHandle
from app.tabs.engine_job_tab import EngineJobTab
from app.tabs.training_form import TrainingForm
from app.widgets.cluster_panel import ClusterPanel
from app.widgets.job_progress import JobProgress
from app.widgets.plots import TrainingCurves, metric_kind
from app.widgets.runs_table import RunsPanel
from engine.outcome import Outcome

GROUP = "training"


class TrainingTab(EngineJobTab):
    title = "Training"
    group = GROUP

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.current_run: str | None = None
        self.event_count = 0
        self.form = TrainingForm(context, self)
        self.form.start_button.clicked.connect(self.start)
        self.form.cancel_button.clicked.connect(self.cancel)
        self.runs = RunsPanel(context, self.form.runs_root, self)
        self.runs.resume_requested.connect(self.resume)
        self.cluster_panel = ClusterPanel(self.form.form_config, context.settings, self)
        self.form.add_section(self.cluster_panel)
        self.cluster_panel.watch(self.form.setting_widgets)
        context.dataset_changed.connect(self.cluster_panel.refresh)
        self._build()
        self.runs.overlays_changed.connect(self.curves.set_overlays)
        self.smooth_check.setChecked(context.settings.value("training/smooth", False, bool))
        self.runs.refresh()

    def _build(self) -> None:
        root = QHBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(splitter)
        splitter.addWidget(self.form)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        self.progress = JobProgress(self.context.runner, GROUP, self, show_cancel=False)  # the form has Cancel
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
        self.warnings_list.setMaximumHeight(90)
        self.warnings_list.setWordWrap(True)
        self.warnings_list.setVisible(False)
        right_layout.addWidget(self.warnings_list)
        right_layout.addWidget(self.runs, 2)
        splitter.addWidget(right)
        splitter.setSizes([390, 890])

    def _class_count(self) -> int:
        dataset = self.context.dataset
        return len(dataset.classes) if dataset is not None else 2

    def save_settings(self) -> None:
        self.form.save_settings()
        self.context.settings.set_value("training/smooth", self.smooth_check.isChecked())

    # ---- running
    def _busy(self) -> bool:
        return self._job is not None and self._job.running

    def _set_busy(self, busy: bool) -> None:
        self.form.set_busy(busy)
        self.runs.set_busy(busy)
        self.cluster_panel.set_busy(busy)

    @Slot()
    def start(self) -> JobHandle | None:
        """Start training with the form's settings (the previous training job is cancelled)."""
        if not self.context.tf_is_ready:
            return None
        config = self.form.form_config()
        self.save_settings()
        lr_text = self.form.lr_edit.text().strip()
        from engine.errors import ConvScopeError, InvalidSetting  # noqa: PLC0415

        try:  # settings errors are found here, without starting a process for them
            if config.learning_rate is not None and config.learning_rate != config.learning_rate:
                raise InvalidSetting(f"learning rate '{lr_text}' is not a number",
                                     "type one such as 1e-4, or leave it empty for the default")
            if self.cluster_panel.active:
                config = self.cluster_panel.cluster_config(config)
            config.validate()
        except ConvScopeError as error:
            return self._start_job("Training", _failing_job(error))
        # Training runs in a child process (engine.worker): its TensorFlow work holds that
        # process's GIL, not the GUI's.
        if not self.cluster_panel.active:
            return self._start_job("Training", ("engine.train.strategies:train", (config,)))
        self.cluster_panel.started()
        return self._start_job("Training as the chief of a cluster", ("engine.train.cluster:train_cluster", (config,)))

    @Slot(str)
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
        self._losses, self._hinted = [], False
        self.status_label.setText("Preparing…")
        if isinstance(job, tuple):  # (target, args): a job process
            handle = self.context.runner.start_process(name, job[0], job[1], group=GROUP)
        else:
            handle = self.context.runner.start(name, job, group=GROUP)
        handle.close_question = ("Training is running — stop it and keep last.keras?\n\n"
                                 "The run can be resumed later from the Training tab's runs list.")
        return self._watch(handle)

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
        self.cluster_panel.on_event(event)
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
            self.runs.update_running(self.current_run, event.epoch, event.epochs)
            shown = ", ".join(f"{k} {v:.3f}" for k, v in event.metrics.items() if metric_kind(k))
            phase = f" ({event.phase})" if event.phase not in ("train", "") else ""
            self.status_label.setText(f"Epoch {event.epoch}/{event.epochs}{phase}: {shown} — {event.seconds:.1f} s")
            self._losses.append(event.metrics.get("loss"))
            hint = stalled_hint(self._losses, event.metrics.get("val_accuracy"), self._class_count())
            if hint and not self._hinted:
                self._hinted = True
                self.warnings_list.addItem(f"⚠ {hint}")
                self.warnings_list.setVisible(True)
        elif isinstance(event, RunStarted):
            self.current_run = event.run_dir
            self.status_label.setText(f"Run folder: {event.run_dir}")
            self.curves.set_epochs(event.epochs)
            values = self.form.form_config()
            model = values.preset if event.strategy == "scratch" else values.base
            self.runs.show_running(event.run_dir, event.strategy, model, event.epochs)
            self.context.runs_changed.emit()
        elif isinstance(event, Warning_):
            if self.warnings_list.findItems(f"⚠ {event.message}", Qt.MatchFlag.MatchExactly):
                return  # said once is enough (the scan and the split both notice an empty class)
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
        self.cluster_panel.finished()
        if self._job is not None and self._job.outcome == Outcome.CANCELLED and self.current_run:
            self.status_label.setText(f"Cancelled. {self.current_run} keeps last.keras and can be resumed.")
        self.runs.refresh()
        self.done.emit()

    # ---- runs list


def _failing_job(error: Exception):
    """A job that only reports ``error`` (through the runner's one error path)."""

    def job(emit, cancel):
        raise error

    return job


STALL_EPOCHS = 3  # after this many epochs a loss that has not moved is worth a word
STALL_CHANGE = 0.02  # "has not moved": less than 2 % below the first epoch's


def stalled_hint(losses: list, val_accuracy: float | None, classes: int) -> str:
    """A plain hint when training is not learning: the loss flat since the first epoch and the
    validation accuracy at chance (a book-scratch model on few images at its default rate)."""
    losses = [loss for loss in losses if loss is not None]
    if len(losses) < STALL_EPOCHS or losses[0] <= 0:
        return ""
    if losses[-1] < losses[0] * (1 - STALL_CHANGE):
        return ""
    chance = 1 / max(classes, 2)
    if val_accuracy is not None and val_accuracy > chance + 0.1:
        return ""
    return (f"The model is not learning: the loss has stayed at {losses[-1]:.3f} for {len(losses)} epochs"
            + (f" and validation accuracy is {val_accuracy:.2f}, chance level" if val_accuracy is not None else "")
            + ". Try more epochs, a higher learning rate (e.g. 1e-3), more images, or a pretrained base "
            "(feature extraction).")
