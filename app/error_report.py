"""Error reporting for jobs: the user's log file, the one-line message, the non-blocking message box.

A ConvScopeError is the user's to fix: its own text, a warning box, one log line. Anything else is a
bug: "An unexpected error stopped …", a critical box whose details hold the traceback, which also
goes to ``user_data_dir()/logs/convscope.log``.
"""

from __future__ import annotations

import datetime as _dt
import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from engine.errors import ConvScopeError

log = logging.getLogger("convscope.app")


def log_file_path():
    from engine.paths import user_data_dir  # noqa: PLC0415

    folder = user_data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "convscope.log"


def append_to_log(text: str) -> None:
    """Append a block to the user's log file; never raises (logging must not cause errors)."""
    try:
        stamp = _dt.datetime.now().isoformat(timespec="seconds")
        with open(log_file_path(), "a", encoding="utf-8") as handle:
            handle.write(f"[{stamp}] {text.rstrip()}\n")
    except OSError:
        pass


def describe_error(name: str, error: object, details: str = "") -> str:
    """The message the user reads for ``error`` in job ``name``; logged (file and logger) on the way."""
    if isinstance(error, ConvScopeError):
        message = str(error)
        append_to_log(f"{name}: {type(error).__name__}: {message}")
    else:
        message = f"An unexpected error stopped “{name}”: {type(error).__name__}: {error}"
        append_to_log(f"{name}: unexpected error\n{details}")
    log.error("%s: %s", name, message)
    return message


def open_error_box(parent: QWidget | None, name: str, message: str, details: str) -> QMessageBox:
    """A window-modal, non-blocking box (no nested event loop while jobs deliver results)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning if not details else QMessageBox.Icon.Critical)
    box.setWindowTitle(name)  # the window system adds " — ConvScope"
    box.setText(message)
    if details:
        box.setInformativeText(f"This is a bug. The details were also written to {log_file_path()}.")
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
