"""Read-only tables as the tabs show them: header labels, stretched columns, whole-row selection."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget


def read_only_table(headers: list[str], stretch: tuple[int, ...] = (0,), rows: bool = True) -> QTableWidget:
    """A table with ``headers``; the ``stretch`` columns share the width, the others fit their
    contents; no row numbers, no editing; ``rows``: a click selects the whole row."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    header = table.horizontalHeader()
    for column in range(len(headers)):
        mode = QHeaderView.ResizeMode.Stretch if column in stretch else QHeaderView.ResizeMode.ResizeToContents
        header.setSectionResizeMode(column, mode)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    if rows:
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    return table
