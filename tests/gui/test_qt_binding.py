"""The installed Qt binding must not leak references to None (PySide6 6.12.0 on Python 3.11 did:
every call of a Qt method returning nothing dropped one, and a long session aborted in none_dealloc)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.gui

PROBE = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel()
before = sys.getrefcount(None)
for _ in range(20_000):
    label.setText("x")
    label.update()
print(sys.getrefcount(None) - before)
"""


def test_qt_calls_leave_none_refcount_alone():
    # In a subprocess: the failure mode is an interpreter abort, which would end the test session.
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert abs(int(result.stdout.strip())) < 100
