"""Small builders for the tabs' control rows: a combo box from (label, data) pairs, and a row of
labels and widgets."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget


def choice_combo(parent: QWidget | None, choices, tooltip: str = "") -> QComboBox:
    """A combo box listing ``choices`` — (label, data) pairs, or (label, data, tooltip) triples."""
    combo = QComboBox(parent)
    for label, data, *tip in choices:
        combo.addItem(label, data)
        if tip:
            combo.setItemData(combo.count() - 1, tip[0], Qt.ItemDataRole.ToolTipRole)
    if tooltip:
        combo.setToolTip(tooltip)
    return combo


def control_row(parent: QWidget | None, *items) -> QHBoxLayout:
    """A row: a str becomes a label, a widget is added as is, ``(widget, stretch)`` stretches."""
    row = QHBoxLayout()
    for item in items:
        item, stretch = item if isinstance(item, tuple) else (item, 0)
        row.addWidget(QLabel(item, parent) if isinstance(item, str) else item, stretch)
    return row
