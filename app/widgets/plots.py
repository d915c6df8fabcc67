"""pyqtgraph plots: live training curves (coalesced redraws, the book's exponential smoothing, runs
overlaid for comparison) and the class-count bar chart."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import QHBoxLayout, QWidget

from app.theme import SERIES_COLORS

REDRAW_INTERVAL_MS = 50  # at most ~20 redraws a second however fast events arrive
SMOOTHING_FACTOR = 0.8  # the book's smooth_curve factor


def smooth_curve(points: list[float], factor: float = SMOOTHING_FACTOR) -> list[float]:
    """Exponential moving average, as in chapter 5 (``previous * factor + point * (1 - factor)``)."""
    smoothed: list[float] = []
    for point in points:
        if smoothed and not math.isnan(point):
            smoothed.append(smoothed[-1] * factor + point * (1 - factor))
        else:
            smoothed.append(point)
    return smoothed


def metric_kind(name: str) -> str | None:
    """'loss' or 'accuracy' plot for a Keras metric name (``val_`` prefix = validation)."""
    base = name[4:] if name.startswith("val_") else name
    if base == "loss" or base.endswith("_loss"):
        return "loss"
    if "acc" in base:
        return "accuracy"
    return None


class _Series:
    def __init__(self) -> None:
        self.x: list[float] = []
        self.y: list[float] = []
        self.item: pg.PlotDataItem | None = None


class TrainingCurves(QWidget):
    """Loss and accuracy side by side. The live run's series are fed with :meth:`add_point`;
    other runs are overlaid with :meth:`set_overlays`. Redraws are coalesced by a timer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plots: dict[str, pg.PlotWidget] = {}
        for kind, title in (("loss", "Loss"), ("accuracy", "Accuracy")):
            plot = pg.PlotWidget()
            plot.setTitle(title)
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setLabel("bottom", "epoch")
            plot.addLegend(offset=(-10, 10) if kind == "loss" else (-10, -10))
            plot.setMenuEnabled(False)
            self.plots[kind] = plot
            layout.addWidget(plot)
        self.live: dict[str, _Series] = {}
        self.overlays: dict[tuple[str, str], _Series] = {}
        self.smoothing = False
        self.redraw_count = 0
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_INTERVAL_MS)
        self._timer.timeout.connect(self._redraw)

    # ---- data
    def clear_live(self) -> None:
        for series in self.live.values():
            if series.item is not None:
                self._remove_item(series.item)
        self.live.clear()
        self._schedule()

    def _remove_item(self, item: pg.PlotDataItem) -> None:
        for plot in self.plots.values():
            plot.removeItem(item)

    def add_point(self, metric: str, x: float, y: float) -> None:
        if metric_kind(metric) is None or y is None:
            return
        series = self.live.setdefault(metric, _Series())
        if series.x and x <= series.x[-1]:  # a resumed run repeats an epoch: replace it
            while series.x and series.x[-1] >= x:
                series.x.pop()
                series.y.pop()
        series.x.append(float(x))
        series.y.append(float(y))
        self._schedule()

    def truncate(self, metric: str, after_x: float) -> None:
        """Drop the points of ``metric`` right of ``after_x`` (the per-batch points of an epoch
        are replaced by the epoch's value when it ends)."""
        series = self.live.get(metric)
        if series is None:
            return
        while series.x and series.x[-1] > after_x:
            series.x.pop()
            series.y.pop()
        self._schedule()

    def set_history(self, history: dict[str, list[float]]) -> None:
        """Show a whole run's history (per-epoch lists) as the live series."""
        self.clear_live()
        for metric, values in history.items():
            for epoch, value in enumerate(values, start=1):
                self.add_point(metric, epoch, value)

    def set_overlays(self, runs: dict[str, dict[str, list[float]]]) -> None:
        """Overlay other runs' per-epoch histories (label -> metric -> values), dashed."""
        for series in self.overlays.values():
            if series.item is not None:
                self._remove_item(series.item)
        self.overlays.clear()
        for label, history in runs.items():
            for metric, values in history.items():
                if metric_kind(metric) is None:
                    continue
                series = _Series()
                series.x = [float(i) for i in range(1, len(values) + 1)]
                series.y = [float(v) for v in values]
                self.overlays[(label, metric)] = series
        self._schedule()

    def set_smoothing(self, on: bool) -> None:
        self.smoothing = bool(on)
        self._schedule()

    def point_count(self) -> int:
        return sum(len(s.x) for s in self.live.values())

    # ---- drawing
    def _schedule(self) -> None:
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        """Redraw now (tests and screenshots)."""
        self._timer.stop()
        self._redraw()

    @Slot()
    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraw_count += 1
        for metric, series in sorted(self.live.items()):
            validation = metric.startswith("val_")
            color = SERIES_COLORS[1] if validation else SERIES_COLORS[0]
            name = ("validation" if validation else "training")
            self._draw(series, metric, color, name, Qt.PenStyle.SolidLine, width=2)
        labels = sorted({label for label, _ in self.overlays})
        for (label, metric), series in self.overlays.items():
            color = SERIES_COLORS[(2 + labels.index(label)) % len(SERIES_COLORS)]
            validation = metric.startswith("val_")
            style = Qt.PenStyle.DashLine if validation else Qt.PenStyle.DotLine
            self._draw(series, metric, color, f"{label} ({'val' if validation else 'train'})", style, width=1.5)

    def _draw(self, series: _Series, metric: str, color: str, name: str, style, width: float) -> None:
        kind = metric_kind(metric)
        if kind is None:
            return
        y = smooth_curve(series.y) if self.smoothing else series.y
        pen = pg.mkPen(color, width=width, style=style)
        if series.item is None:
            series.item = self.plots[kind].plot(series.x, y, pen=pen, name=name,
                                                symbol="o" if len(series.x) < 40 else None, symbolSize=5,
                                                symbolBrush=color, symbolPen=None)
        else:
            series.item.setData(series.x, y, pen=pen)


class ClassCountChart(pg.PlotWidget):
    """Images per class as bars (stacked per subset when the folder is pre-split)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.setLabel("left", "images")
        self.showGrid(y=True, alpha=0.25)
        self.setTitle("Images per class")
        self.counts: dict[str, int] = {}
        self._items: list = []
        # one row, centred along the top edge, above the bars (set_counts leaves head-room for it)
        self._legend = self.addLegend(offset=(0, 2), colCount=3, labelTextSize="8pt")
        self._legend.anchor(itemPos=(0.5, 0), parentPos=(0.5, 0), offset=(0, 2))

    def set_counts(self, per_subset: dict[str, dict[str, int]], classes: list[str]) -> None:
        for item in self._items:
            self.removeItem(item)
        self._items.clear()
        self._legend.clear()
        self.counts = {c: sum(sub.get(c, 0) for sub in per_subset.values()) for c in classes}
        xs = list(range(len(classes)))
        bottom = [0.0] * len(classes)
        for index, (subset, counts) in enumerate(per_subset.items()):
            heights = [float(counts.get(c, 0)) for c in classes]
            bars = pg.BarGraphItem(x=xs, height=heights, y0=bottom, width=0.6,
                                   brush=SERIES_COLORS[index % len(SERIES_COLORS)], pen=None)
            self.addItem(bars)
            self._items.append(bars)
            if len(per_subset) > 1:
                self._legend.addItem(bars, subset)
            bottom = [b + h for b, h in zip(bottom, heights)]
        self._legend.setColumnCount(max(1, len(per_subset)))
        self._legend.setVisible(len(per_subset) > 1)
        for x, c in zip(xs, classes):
            text = pg.TextItem(str(self.counts[c]), anchor=(0.5, 1.0), color=pg.getConfigOption("foreground"))
            text.setPos(x, bottom[x])
            self.addItem(text)
            self._items.append(text)
        self.getAxis("bottom").setTicks([[(x, c) for x, c in zip(xs, classes)]])
        top = max(bottom) if bottom else 1
        self.setXRange(-0.6, max(len(classes) - 0.4, 0.6), padding=0)
        # head-room: the totals above the bars, and the one-row legend above them
        self.setYRange(0, top * (1.6 if len(per_subset) > 1 else 1.15) + 1, padding=0)
