"""The Training tab's cluster section: train as the chief of several machines, show each other worker's command and who has joined.

The user lists the workers (this machine first, HOST:PORT per line). The panel shows the exact
``convscope train`` command for each other machine — the tab's settings, this run's folder, the
cluster and that machine's task — and, while the chief's job runs, which workers have joined (the
engine reports :class:`~engine.events.WorkerJoined`). The engine's ``train_cluster`` waits for all
of them before training; the panel only shows it.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Slot
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

SETTING = "training/cluster_workers"
DEFAULT_PORT = 23456


class ClusterPanel(QGroupBox):
    """Checkable group: unchecked, the tab trains on this machine alone."""

    def __init__(self, form_config: Callable, settings, parent: QWidget | None = None) -> None:
        super().__init__("Train on several machines (this one is the chief)", parent)
        self._form_config = form_config
        self._settings = settings
        self._out: str | None = None  # this run's folder, fixed once the commands are shown
        self._busy = False
        self._joined: set[int] = set()
        self._problem = ""
        self.setCheckable(True)
        self.setChecked(False)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Workers, one HOST:PORT per line — this machine first:"))
        self.workers_edit = QPlainTextEdit()
        self.workers_edit.setPlaceholderText(f"{socket.gethostname()}:{DEFAULT_PORT}\nother-machine:{DEFAULT_PORT}")
        self.workers_edit.setMaximumHeight(64)
        self.workers_edit.setPlainText(settings.value(SETTING, "", str))
        layout.addWidget(self.workers_edit)
        hint = QLabel("Start on each other machine (change --data if its copy of the dataset lives elsewhere):")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.commands_view = QPlainTextEdit()
        self.commands_view.setReadOnly(True)
        self.commands_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.commands_view.setMaximumHeight(90)
        layout.addWidget(self.commands_view)
        row = QHBoxLayout()
        self.copy_button = QPushButton("Copy commands")
        self.copy_button.clicked.connect(self.copy_commands)
        row.addWidget(self.copy_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.joined_list = QListWidget()
        self.joined_list.setMaximumHeight(70)
        layout.addWidget(self.joined_list)
        self._contents = [child for child in self.findChildren(QWidget) if child.parent() is self]
        self.workers_edit.textChanged.connect(self.refresh)
        self.toggled.connect(self._on_toggled)
        self._on_toggled(False)

    # ---- what the tab asks
    @property
    def active(self) -> bool:
        return self.isChecked()

    def spec(self):
        from engine.train.cluster_spec import ClusterSpec  # noqa: PLC0415 (no TensorFlow)

        lines = [line.strip() for line in self.workers_edit.toPlainText().splitlines() if line.strip()]
        return ClusterSpec.parse(",".join(lines), 0)

    def cluster_config(self, config):
        """The chief's ClusterTrainConfig for the tab's TrainConfig (raises InvalidSetting)."""
        import dataclasses  # noqa: PLC0415

        from engine.train.cluster import ClusterTrainConfig  # noqa: PLC0415 (no TensorFlow)

        spec = self.spec()
        return ClusterTrainConfig(dataclasses.replace(config, out=self.run_folder(config), runs_root=None), spec)

    def run_folder(self, config) -> str:
        """This cluster run's folder: a new dated folder in the runs folder, the same until it starts."""
        if self._out is None:
            import re  # noqa: PLC0415

            root = Path(config.runs_root) if config.runs_root else _default_runs_dir()
            name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{config.strategy}_{config.model_name}")
            self._out = str(root / f"{time.strftime('%Y-%m-%d_%H%M%S')}_cluster_{name}")
        return self._out

    def commands(self) -> list[str]:
        """One command per other worker (empty when the list or the settings are not valid)."""
        from engine.errors import ConvScopeError  # noqa: PLC0415
        from engine.train.cluster_spec import train_arguments, worker_command  # noqa: PLC0415

        try:
            spec = self.spec()
            config = self._form_config()
            args = train_arguments(self.cluster_config(config).train)
        except ConvScopeError as error:
            self._problem = str(error)
            return []
        self._problem = ""
        return [worker_command(spec, task, args) for task in range(1, len(spec.workers))]

    # ---- updates
    def watch(self, widgets) -> None:
        """Show fresh commands whenever one of the tab's setting widgets changes."""
        for widget in widgets:
            for name in ("currentIndexChanged", "valueChanged", "textChanged", "toggled"):
                signal = getattr(widget, name, None)
                if signal is not None:
                    signal.connect(self.refresh)
                    break

    @Slot()
    def refresh(self, *_args) -> None:
        if not self.isChecked():
            return
        commands = self.commands()
        self.commands_view.setPlainText("\n\n".join(commands) if commands else self._problem)
        self.copy_button.setEnabled(bool(commands))
        self._show_workers(joined=set())

    def _show_workers(self, joined: set[int]) -> None:
        self.joined_list.clear()
        try:
            spec = self.spec()
        except Exception:  # noqa: BLE001 - an unfinished list: the commands view names the fix
            return
        for task, address in enumerate(spec.workers):
            if task == 0:
                state = "this machine (chief)"
            else:
                state = "joined" if task in joined else "not joined yet"
            self.joined_list.addItem(f"{'✓' if task == 0 or task in joined else '…'} task {task}  {address} — {state}")
        self._joined = joined

    def started(self) -> None:
        """The chief's job started: every other worker is waited for again; the list is kept."""
        self._settings.set_value(SETTING, self.workers_edit.toPlainText())
        self._show_workers(joined=set())

    def finished(self) -> None:
        """The run ended: the next run gets a new folder."""
        self._out = None

    @Slot(object)
    def on_event(self, event) -> None:
        from engine.events import WorkerJoined  # noqa: PLC0415

        if isinstance(event, WorkerJoined):
            self._show_workers(self._joined | {event.task})

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.workers_edit.setReadOnly(busy)

    @Slot()
    def copy_commands(self) -> None:
        QGuiApplication.clipboard().setText(self.commands_view.toPlainText())

    @Slot(bool)
    def _on_toggled(self, on: bool) -> None:
        if self._busy and not on:  # a running cluster job stays one until it ends
            self.setChecked(True)
            return
        for child in self._contents:
            child.setVisible(on)
        self._joined = set()
        self.refresh()


def _default_runs_dir() -> Path:
    from engine.paths import default_runs_dir  # noqa: PLC0415

    return Path(default_runs_dir())
