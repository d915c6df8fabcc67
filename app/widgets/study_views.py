"""The Study tab's two comparisons: validation curves of every rung overlaid, confusion matrices side by side.

Both only draw what they are given: a rung's ``val_accuracy`` list and ``confusion_matrix`` from
its entry of study.json (the ``StudyRungFinished`` event's result), and live points from the
training events while a rung runs.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractItemView, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from app.theme import SERIES_COLORS, ensure_pyqtgraph_colors
from app.widgets.plots import EpochAxis
from app.widgets.tables import read_only_table


class RungCurves(QWidget):
    """Validation accuracy per epoch, one line per rung (legend: the rung's name)."""

    def __init__(self, rung_names: tuple[str, ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        ensure_pyqtgraph_colors()
        self.rung_names = rung_names
        self.plot = pg.PlotWidget(axisItems={"bottom": EpochAxis("bottom")})
        self.plot.setTitle("Validation accuracy per epoch")
        self.plot.setLabel("bottom", "epoch")
        self.plot.addLegend(offset=(-10, -10))
        self.plot.setMenuEnabled(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        self._points: dict[str, dict[int, float]] = {}
        self._items: dict[str, pg.PlotDataItem] = {}

    def clear(self) -> None:
        for item in self._items.values():
            self.plot.removeItem(item)
            self.plot.getPlotItem().legend.removeItem(item)
        self._items.clear()
        self._points.clear()

    def add_point(self, rung: str, epoch: int, value: float) -> None:
        """A live point of the running rung (``epoch`` 1-based)."""
        self._points.setdefault(rung, {})[epoch] = value
        self._draw(rung)

    def set_curve(self, rung: str, values: list[float]) -> None:
        """The rung's whole curve (its history once it finished: replaces the live points)."""
        self._points[rung] = {i: float(v) for i, v in enumerate(values, start=1)}
        self._draw(rung)

    def curve(self, rung: str) -> list[float]:
        """The drawn values of ``rung`` in epoch order (empty when it has none)."""
        item = self._items.get(rung)
        return [] if item is None else [float(v) for v in item.yData]

    def _draw(self, rung: str) -> None:
        points = sorted(self._points[rung].items())
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        item = self._items.get(rung)
        if item is None:
            colour = SERIES_COLORS[self.rung_names.index(rung) % len(SERIES_COLORS)] \
                if rung in self.rung_names else SERIES_COLORS[-1]
            item = self.plot.plot(xs, ys, pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5,
                                  symbolBrush=colour, symbolPen=None, name=rung)
            self._items[rung] = item
        else:
            item.setData(xs, ys)


class ConfusionMatrices(QWidget):
    """One small confusion matrix per rung, in a row (rows: true class, columns: predicted)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(QLabel("Confusion matrices on the test images (rows: true class, columns: predicted)"))
        self._layout = QHBoxLayout()
        outer.addLayout(self._layout)
        self.tables: dict[str, QTableWidget] = {}
        self._boxes: list[QGroupBox] = []

    def clear(self) -> None:
        for box in self._boxes:
            self._layout.removeWidget(box)
            box.deleteLater()
        self._boxes.clear()
        self.tables.clear()

    def set_matrix(self, rung: str, classes: list[str], matrix: list[list[int]]) -> None:
        table = self.tables.get(rung)
        if table is None:
            box = QGroupBox(rung)
            box_layout = QVBoxLayout(box)
            box_layout.setContentsMargins(4, 4, 4, 4)
            table = read_only_table(classes, stretch=tuple(range(len(classes))), rows=False)
            table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
            table.verticalHeader().setVisible(True)  # the true classes
            table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
            for policy in (table.setVerticalScrollBarPolicy, table.setHorizontalScrollBarPolicy):
                policy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            box_layout.addWidget(table)
            self._layout.addWidget(box, 1)
            self._boxes.append(box)
            self.tables[rung] = table
        table.setRowCount(len(matrix))
        table.setColumnCount(len(classes))
        table.setHorizontalHeaderLabels(classes)
        table.setVerticalHeaderLabels(classes)
        table.setToolTip("rows: true class, columns: predicted")
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                item = QTableWidgetItem(str(count))
                if i == j:  # the correct answers stand out
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                table.setItem(i, j, item)
        table.resizeRowsToContents()  # the whole matrix, no empty space under it
        table.setFixedHeight(table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
                             + sum(table.rowHeight(i) for i in range(len(matrix))))

    def matrix(self, rung: str) -> list[list[int]]:
        table = self.tables[rung]
        return [[int(table.item(i, j).text()) for j in range(table.columnCount())] for i in range(table.rowCount())]
