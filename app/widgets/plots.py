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


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10 × 10^k that is ≥ ``value`` (> 0): a
    plot's range that changes only when the data passes one of these steps."""
    if not value > 0 or math.isinf(value):
        return 1.0
    scale = 10.0 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * scale >= value * (1 - 1e-9):
            return step * scale
    return 10 * scale


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
        self.dirty = True  # its points changed since it was last drawn


class EpochAxis(pg.AxisItem):
    """Whole epochs only on the x axis (pyqtgraph's default ticks put "0.5", "1.5" there)."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 - pyqtgraph's names
        levels = [(spacing, [v for v in values if float(v).is_integer()])
                  for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        if not levels:
            levels = [(1.0, [float(v) for v in range(math.ceil(minVal), math.floor(maxVal) + 1)])]
        return levels


class TrainingCurves(QWidget):
    """Loss and accuracy side by side. The live run's series are fed with :meth:`add_point`;
    other runs are overlaid with :meth:`set_overlays`. Redraws are coalesced by a timer, touch only
    the series whose points changed (``setData`` on the existing curve, its pen made once), and wait
    while the widget is hidden (another tab is in front): the GUI thread does no drawing nobody sees."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plots: dict[str, pg.PlotWidget] = {}
        for kind, title in (("loss", "Loss"), ("accuracy", "Accuracy")):
            plot = pg.PlotWidget(axisItems={"bottom": EpochAxis("bottom")})
            plot.setTitle(title)
            # No grid: pyqtgraph draws it as full-length translucent tick lines on every repaint,
            # 20 of the ~28 ms one redraw of the two plots took (offscreen, 2 cores) — the GUI
            # thread's longest regular stall while training.
            plot.setLabel("bottom", "epoch")
            plot.addLegend(offset=(-10, 10) if kind == "loss" else (-10, -10))
            plot.setMenuEnabled(False)
            # Ranges are set by _update_ranges in steps (nice_ceiling), not by pyqtgraph's
            # auto-range on every new point: a changed range regenerates both axes' ticks and
            # texts, most of a redraw's time. A user who zooms or pans takes the plot over.
            plot.disableAutoRange()
            plot.getViewBox().sigRangeChangedManually.connect(
                lambda *_args, k=kind: self._user_ranges.add(k))
            self.plots[kind] = plot
            layout.addWidget(plot)
        self.live: dict[str, _Series] = {}
        self.overlays: dict[tuple[str, str], _Series] = {}
        self.smoothing = False
        self.redraw_count = 0
        self.epochs_hint = 0  # the live run's epochs (the x range is laid out for them)
        self._ranges: dict[str, tuple[float, float, float, float]] = {}
        self._user_ranges: set[str] = set()
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
        self._user_ranges.clear()
        self._schedule()

    def set_epochs(self, epochs: int) -> None:
        """The live run's number of epochs: the x axis spans them from the start."""
        self.epochs_hint = max(0, int(epochs or 0))
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
        series.dirty = True
        self._schedule()

    def truncate(self, metric: str, after_x: float) -> None:
        """Drop the points of ``metric`` right of ``after_x`` (the per-batch points of an epoch
        are replaced by the epoch's value when it ends)."""
        series = self.live.get(metric)
        if series is None:
            return
        if not series.x or series.x[-1] <= after_x:
            return
        while series.x and series.x[-1] > after_x:
            series.x.pop()
            series.y.pop()
        series.dirty = True
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
        if bool(on) == self.smoothing:
            return
        self.smoothing = bool(on)
        for series in (*self.live.values(), *self.overlays.values()):
            series.dirty = True
        self._schedule()

    def point_count(self) -> int:
        return sum(len(s.x) for s in self.live.values())

    # ---- drawing
    def _schedule(self) -> None:
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def flush(self) -> None:
        """Redraw now, shown or not (tests and screenshots)."""
        self._timer.stop()
        self._redraw(force=True)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if self._dirty:  # what changed while hidden
            self._schedule()

    @Slot()
    def _redraw(self, force: bool = False) -> None:
        if not self._dirty:
            return
        if not force and not self.isVisible():
            return  # stays dirty; showEvent redraws
        self._dirty = False
        self.redraw_count += 1
        for metric, series in sorted(self.live.items()):
            if not series.dirty:
                continue
            validation = metric.startswith("val_")
            color = SERIES_COLORS[1] if validation else SERIES_COLORS[0]
            name = ("validation" if validation else "training")
            self._draw(series, metric, color, name, Qt.PenStyle.SolidLine, width=2)
        labels = sorted({label for label, _ in self.overlays})
        for (label, metric), series in self.overlays.items():
            if not series.dirty:
                continue
            color = SERIES_COLORS[(2 + labels.index(label)) % len(SERIES_COLORS)]
            validation = metric.startswith("val_")
            style = Qt.PenStyle.DashLine if validation else Qt.PenStyle.DotLine
            self._draw(series, metric, color, f"{label} ({'val' if validation else 'train'})", style, width=1.5)
        self._update_ranges()

    def _update_ranges(self) -> None:
        for kind, plot in self.plots.items():
            if kind in self._user_ranges:
                continue
            xs_max, ys_min, ys_max = float(self.epochs_hint), 0.0, 0.0
            for metric_or_key, series in (*self.live.items(), *self.overlays.items()):
                metric = metric_or_key[1] if isinstance(metric_or_key, tuple) else metric_or_key
                if metric_kind(metric) != kind or not series.x:
                    continue
                finite = [v for v in series.y if math.isfinite(v)]
                xs_max = max(xs_max, series.x[-1])
                if finite:
                    ys_min, ys_max = min(ys_min, min(finite)), max(ys_max, max(finite))
            x_hi = max(1.0, math.ceil(xs_max))
            y_hi = 1.0 if kind == "accuracy" and ys_max <= 1.0 else nice_ceiling(ys_max)
            y_lo = 0.0 if ys_min >= 0 else -nice_ceiling(-ys_min)
            wanted = (0.0, x_hi, y_lo, y_hi)
            if self._ranges.get(kind) != wanted:
                self._ranges[kind] = wanted
                plot.setRange(xRange=(0.0, x_hi), yRange=(y_lo, y_hi), padding=0.02)

    def _draw(self, series: _Series, metric: str, color: str, name: str, style, width: float) -> None:
        series.dirty = False
        kind = metric_kind(metric)
        if kind is None:
            return
        y = smooth_curve(series.y) if self.smoothing else series.y
        if series.item is None:
            pen = pg.mkPen(color, width=width, style=style)
            series.item = self.plots[kind].plot(series.x, y, pen=pen, name=name,
                                                symbol="o" if len(series.x) < 40 else None, symbolSize=5,
                                                symbolBrush=color, symbolPen=None)
        else:
            series.item.setData(series.x, y)  # the pen stays (made once, with the item)


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
        self._empty_note: pg.TextItem | None = None
        self.show_empty()

    def show_empty(self, text: str = "No dataset yet: choose or drop a folder of class folders") -> None:
        """No bars and no axes (an empty 0–1 plot reads as data), only ``text`` in the middle."""
        self._clear()
        for axis in ("left", "bottom"):
            self.showAxis(axis, False)
        self._empty_note = pg.TextItem(text, anchor=(0.5, 0.5), color=pg.getConfigOption("foreground"))
        self._empty_note.setPos(0.5, 0.5)
        self.addItem(self._empty_note)
        self.setXRange(0, 1, padding=0)
        self.setYRange(0, 1, padding=0)

    def _clear(self) -> None:
        for item in self._items:
            self.removeItem(item)
        self._items.clear()
        self._legend.clear()
        if self._empty_note is not None:
            self.removeItem(self._empty_note)
            self._empty_note = None

    def set_counts(self, per_subset: dict[str, dict[str, int]], classes: list[str]) -> None:
        if not classes:
            self.counts = {}
            self.show_empty("No classes found in this folder")
            return
        self._clear()
        for axis in ("left", "bottom"):
            self.showAxis(axis, True)
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
