"""Activations tab: what each layer's channels make of one image (Chollet 5.4.1).

Pick a model and an image; the layer tree lists every layer with its output shape (nested bases
expanded). The chosen layer's channels are drawn side by side (engine.inspect.activations.channel_grid)
in a zoomable view; clicking a channel enlarges it. The side panel shows the layer's statistics and
a chart of sparsity (fraction of all-zero channels) over depth for every conv layer: deeper layers
encode less of the image itself, and more of them stay blank.

One forward pass (in the job runner) computes every conv layer at once; other layers are computed
on demand. Nothing here computes activations itself: it calls ``engine.inspect``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.tabs.inspection import InspectionTab
from app.widgets.image_view import ImageView, best_columns  # noqa: F401 (re-exported)

GRID_MARGIN = 2
AUTO = 0  # "Channels per row" special value: as many as fill the view best


_PATH_ROLE = Qt.ItemDataRole.UserRole


def _shape_text(shape) -> str:
    if shape is None:
        return "—"
    shape = tuple(shape)[1:]  # without the batch axis
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ")"


class ActivationsTab(InspectionTab):
    title = "Activations"

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._layers: list = []  # engine LayerInfo, in model order
        self._image: np.ndarray | None = None
        self._activations: dict[str, np.ndarray] = {}  # for the current model + image
        self._stats: dict[str, dict] = {}
        self._layer: str | None = None
        self._pending_layer: str | None = None
        self._grid_shape: tuple[int, int, int] | None = None  # tile h, tile w, columns

        # --- controls
        self.per_row = QSpinBox(self)
        self.per_row.setRange(AUTO, 64)
        self.per_row.setSpecialValueText("auto")
        self.per_row.setValue(AUTO)
        self.per_row.setToolTip("Channels per row of the grid (auto: as many as make the tiles largest in the view)")
        self.layer_tree = QTreeWidget(self)
        self.layer_tree.setHeaderLabels(["Layer", "Output shape", "Class"])
        self.layer_tree.setColumnWidth(0, 200)
        self.layer_tree.setColumnWidth(1, 104)
        self.layer_tree.setColumnWidth(2, 110)
        self.layer_tree.setIndentation(12)
        self.layer_tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # block3b_…_activation
        self.layer_tree.setUniformRowHeights(True)
        self.layer_tree.setMinimumWidth(300)
        self.grid_view = ImageView(self, placeholder="Choose a model, an image and a layer")
        self.grid_title = QLabel("", self)
        self.grid_title.setWordWrap(True)
        self.status.setText("Drop an image file here, or pick one above.")
        self.input_view = ImageView(self, placeholder="input")
        self.channel_view = ImageView(self, placeholder="click a channel")
        self.channel_title = QLabel("Channel —", self)
        self.channel_title.setWordWrap(True)
        self.stats_box = QWidget(self)
        stats_form = QFormLayout(self.stats_box)
        stats_form.setContentsMargins(0, 0, 0, 0)
        self.stat_channels = QLabel("—")
        self.stat_zero = QLabel("—")
        self.stat_mean = QLabel("—")
        self.stat_max = QLabel("—")
        stats_form.addRow("Channels:", self.stat_channels)
        stats_form.addRow("All-zero channels:", self.stat_zero)
        stats_form.addRow("Mean:", self.stat_mean)
        stats_form.addRow("Max:", self.stat_max)
        self.sparsity_plot = pg.PlotWidget(self)
        self.sparsity_plot.setBackground(self.palette().base().color())
        self.sparsity_plot.setMenuEnabled(False)
        self.sparsity_plot.setMouseEnabled(x=False, y=False)
        self.sparsity_plot.setTitle("Sparsity over depth (conv layers)", size="9pt")
        self.sparsity_plot.setLabel("left", "all-zero")
        self.sparsity_plot.setLabel("bottom", "conv layer #")
        self.sparsity_plot.setYRange(0, 1)
        self.sparsity_plot.setMinimumHeight(150)
        self._sparsity_curve = self.sparsity_plot.plot([], [], pen=pg.mkPen((40, 110, 200), width=2),
                                                       symbol="o", symbolSize=5, symbolBrush=(40, 110, 200))
        self._sparsity_marker = pg.InfiniteLine(angle=90, pen=pg.mkPen((220, 120, 0), width=1.5))
        self._sparsity_marker.setVisible(False)
        self.sparsity_plot.addItem(self._sparsity_marker)
        self.gate.add(self.layer_tree)

        # --- layout
        top = QHBoxLayout()
        top.addWidget(self.image_picker, 1)
        top.addWidget(QLabel("Channels per row:", self))
        top.addWidget(self.per_row)
        centre = QWidget(self)
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addWidget(self.grid_title)
        centre_layout.addWidget(self.grid_view, 1)
        side = QWidget(self)
        side.setMinimumWidth(250)
        side.setMaximumWidth(340)
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        pair = QHBoxLayout()
        left_col, right_col = QVBoxLayout(), QVBoxLayout()
        left_col.addWidget(QLabel("Input", self))
        left_col.addWidget(self.input_view)
        right_col.addWidget(self.channel_title)
        right_col.addWidget(self.channel_view)
        pair.addLayout(left_col)
        pair.addLayout(right_col)
        side_layout.addLayout(pair, 2)
        side_layout.addWidget(self.stats_box)
        side_layout.addWidget(self.sparsity_plot, 2)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.layer_tree)
        splitter.addWidget(centre)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 0)
        splitter.setSizes([440, 520, 300])
        self.assemble(top, (splitter, 1))

        # --- wiring
        self.layer_tree.currentItemChanged.connect(self._on_tree_current)
        self.grid_view.clicked.connect(self._on_grid_clicked)
        self.per_row.valueChanged.connect(self._on_per_row)
        self.relayout_when_resized(self.grid_view, self._relayout)
        self.follow_shared_model()

    # -- public API -----------------------------------------------------------------------------
    def image_changed(self) -> None:
        """Compute the activations of the new image (when a model is loaded)."""
        self._activations, self._stats = {}, {}
        self._image = None
        self._compute()

    @Slot(str)
    def select_layer(self, path: str) -> bool:
        """Select layer ``path`` (as listed by engine.inspect.layers) and show its channels."""
        item = self._find_item(path)
        if item is None:
            self._pending_layer = path
            return False
        self.layer_tree.setCurrentItem(item)
        self.layer_tree.scrollToItem(item)
        return True

    @property
    def current_layer(self) -> str | None:
        return self._layer

    def grid_image(self) -> np.ndarray | None:
        return self.grid_view.image()

    def layer_paths(self) -> list[str]:
        return [info.path for info in self._layers]

    def sparsity_series(self) -> tuple[list[str], list[float]]:
        """(conv layer paths, their all-zero fraction) as charted."""
        paths = [info.path for info in self._layers if info.is_conv and info.path in self._stats]
        return paths, [self._stats[p]["zero_fraction"] for p in paths]

    # -- model ----------------------------------------------------------------------------------
    @Slot(object)
    def set_model(self, loaded) -> None:
        self._loaded = loaded
        self._activations, self._stats = {}, {}
        self._layer = None
        self.layer_tree.blockSignals(True)
        self.layer_tree.clear()
        self.layer_tree.blockSignals(False)
        self._layers = []
        self.grid_view.clear("Choose a layer")
        self.channel_view.clear("click a channel")
        self._update_stats(None)
        self._update_sparsity_chart()
        if loaded is None:
            return
        from engine.inspect.layers import list_layers  # noqa: PLC0415

        self._layers = list_layers(loaded.model)
        self.layer_tree.blockSignals(True)
        self._fill_tree()
        self.layer_tree.blockSignals(False)
        wanted = self._pending_layer
        self._pending_layer = None
        if wanted and self._find_item(wanted) is not None:
            self.select_layer(wanted)
        else:
            first = next((i.path for i in self._layers if i.is_conv), None)
            if first is None:
                first = next((i.path for i in self._layers if i.is_spatial and not i.is_model), None)
            if first is None:
                self.status.setText(f"Model '{loaded.model.name}' has no convolution layers: "
                                    "pick a layer in the list to see why it cannot be drawn.")
            else:
                self.layer_tree.blockSignals(True)
                self.select_layer(first)
                self.layer_tree.blockSignals(False)
                self._layer = first
                self.status.setText("Pick an image (or drop one here)." if not self._image_path else "")
        if self._image_path:
            self.when_shown(self._compute)

    def _fill_tree(self) -> None:
        parents: list[QTreeWidgetItem | None] = [None]
        for info in self._layers:
            name = info.path.rsplit("/", 1)[-1]
            shape = _shape_text(info.output_shape)
            item = QTreeWidgetItem([name, shape, info.class_name])
            item.setData(0, _PATH_ROLE, info.path)
            tip = f"{info.path}\n{info.class_name}, output {shape}\n{info.params:,} parameters"
            for column in range(3):
                item.setToolTip(column, tip)
            if not info.is_spatial or info.is_model:
                for column in range(3):
                    item.setForeground(column, self.palette().placeholderText())
            del parents[info.depth + 1:]
            parent = parents[info.depth] if info.depth < len(parents) else parents[-1]
            if parent is None:
                self.layer_tree.addTopLevelItem(item)
            else:
                parent.addChild(item)
            if info.is_model:
                parents.append(item)
        self.layer_tree.expandAll()

    def _find_item(self, path: str) -> QTreeWidgetItem | None:
        iterator = [self.layer_tree.topLevelItem(i) for i in range(self.layer_tree.topLevelItemCount())]
        while iterator:
            item = iterator.pop(0)
            if item.data(0, _PATH_ROLE) == path:
                return item
            iterator.extend(item.child(i) for i in range(item.childCount()))
        return None

    # -- computing --------------------------------------------------------------------------------
    def _compute(self) -> None:
        """Start a job for what is missing: all conv layers (first time) and the chosen layer."""
        if self._loaded is None or not self._image_path or not self.gate.ready:
            return
        need = []
        if not self._stats:
            need = [info.path for info in self._layers if info.is_conv]
        if self._layer and self._layer not in self._activations and self._layer not in need:
            need.append(self._layer)
        if not need:
            self._show_layer()
            QTimer.singleShot(0, self._emit_done)
            return
        model = self._loaded.model
        path, image = self._image_path, self._image
        layer = self._layer

        def job(emit, cancel):
            from engine.data.images import read_image_file  # noqa: PLC0415
            from engine.events import Status  # noqa: PLC0415
            from engine.inspect.activations import channel_stats, compute_activations  # noqa: PLC0415

            pixels = image if image is not None else read_image_file(path)
            emit(Status(f"Activations of {len(need)} layer(s) for {Path(path).name}"))
            cancel.raise_if_cancelled()
            values = compute_activations(model, pixels, need)
            stats = {p: channel_stats(v) for p, v in values.items() if np.ndim(v) >= 2}
            return {"image": pixels, "values": values, "stats": stats, "layer": layer,
                    "model": model, "path": path}

        self.status.setText("Computing activations…")
        self.start_job("Activations", job)

    @Slot()
    def _emit_done(self) -> None:
        self.done.emit()

    def on_done(self, result: dict) -> None:
        if self._loaded is None or result["model"] is not self._loaded.model or result["path"] != self._image_path:
            return  # a stale result (the model or image changed meanwhile)
        self._image = result["image"]
        self.input_view.set_image(self._image)
        self._activations.update(result["values"])
        self._stats.update(result["stats"])
        self._update_sparsity_chart()
        self._show_layer()

    def on_exception(self, error: object) -> None:
        super().on_exception(error)
        self.grid_view.clear("—")

    # -- showing --------------------------------------------------------------------------------
    @Slot(QTreeWidgetItem, QTreeWidgetItem)
    def _on_tree_current(self, current: QTreeWidgetItem | None, _previous=None) -> None:
        if current is None:
            return
        self._layer = current.data(0, _PATH_ROLE)
        self.channel_view.clear("click a channel")
        self.channel_title.setText("Channel —")
        if self._layer in self._activations:
            self._show_layer()
            QTimer.singleShot(0, self._emit_done)  # shown from the cache: done, as after a job
        elif self._image_path:
            self._compute()

    @Slot(int)
    def _on_per_row(self, _value: int) -> None:
        if self._layer in self._activations:
            self._show_layer()

    def columns_for(self, activation: np.ndarray) -> int:
        """Channels per row: the spin box's value, or (auto) the count that fills the view best."""
        if self.per_row.value() != AUTO:
            return self.per_row.value()
        if np.ndim(activation) != 3:
            return 16
        height, width, channels = activation.shape
        view_w, view_h = self.grid_view.view_size()
        return best_columns(channels, height, width, view_w, view_h, GRID_MARGIN)

    @Slot()
    def _relayout(self) -> None:
        """The view changed size: re-lay out an auto grid if another column count now fits better
        (only while the user has not zoomed or panned it)."""
        if self.per_row.value() != AUTO or self._grid_shape is None or not self.grid_view.auto_fit:
            return
        activation = self._activations.get(self._layer)
        if activation is not None and np.ndim(activation) == 3 and self.columns_for(activation) != self._grid_shape[2]:
            self._show_layer()

    def _show_layer(self) -> None:
        layer = self._layer
        if layer is None or layer not in self._activations:
            return
        activation = self._activations[layer]
        from engine.errors import ConvScopeError  # noqa: PLC0415
        from engine.inspect.activations import channel_grid  # noqa: PLC0415

        columns = self.columns_for(activation)
        try:
            grid = channel_grid(activation, images_per_row=columns, margin=GRID_MARGIN)
        except ConvScopeError as error:  # numpy only, instant: shown in the tab, as a job's error
            self.on_exception(error)
            return
        height, width, channels = activation.shape
        self._grid_shape = (height, width, min(columns, channels))
        self.grid_view.set_image(grid)
        info = next((i for i in self._layers if i.path == layer), None)
        kind = f" ({info.class_name})" if info else ""
        self.grid_title.setText(f"<b>{layer}</b>{kind} — {channels} channels of {height}×{width} · "
                                "click a channel to enlarge it · wheel zooms, drag pans")
        stats = self._stats.get(layer)
        if stats is None:
            from engine.inspect.activations import channel_stats  # noqa: PLC0415

            stats = self._stats[layer] = channel_stats(activation)
        self._update_stats(stats)
        paths, _ = self.sparsity_series()
        if layer in paths:
            self._sparsity_marker.setPos(paths.index(layer))
            self._sparsity_marker.setVisible(True)
        else:
            self._sparsity_marker.setVisible(False)
        self.status.setText(f"{Path(self._image_path).name} through '{self._loaded.model.name}'"
                            if self._loaded is not None else "")

    def _update_stats(self, stats: dict | None) -> None:
        if not stats:
            for label in (self.stat_channels, self.stat_zero, self.stat_mean, self.stat_max):
                label.setText("—")
            return
        self.stat_channels.setText(str(stats["channels"]))
        self.stat_zero.setText(f"{stats['zero_channels']} ({stats['zero_fraction']:.0%})")
        self.stat_mean.setText(f"{stats['mean']:.4g}")
        self.stat_max.setText(f"{stats['max']:.4g}")

    def _update_sparsity_chart(self) -> None:
        paths, values = self.sparsity_series()
        self._sparsity_curve.setData(list(range(len(values))), values)
        if values:
            self.sparsity_plot.setXRange(-0.5, max(len(values) - 0.5, 0.5), padding=0)

    @Slot(int, int)
    def _on_grid_clicked(self, x: int, y: int) -> None:
        if self._grid_shape is None or self._layer not in self._activations:
            return
        height, width, cols = self._grid_shape
        col, row = x // (width + GRID_MARGIN), y // (height + GRID_MARGIN)
        if x % (width + GRID_MARGIN) >= width or y % (height + GRID_MARGIN) >= height or col >= cols:
            return  # the margin between tiles
        self.show_channel(row * cols + col)

    def show_channel(self, channel: int) -> None:
        """Enlarge one channel of the current layer in the side panel."""
        activation = self._activations.get(self._layer)
        if activation is None or not 0 <= channel < activation.shape[-1]:
            return
        from engine.inspect.activations import channel_grid  # noqa: PLC0415

        tile = channel_grid(activation[..., channel : channel + 1], images_per_row=1)
        self.channel_view.set_image(tile)
        stats = self._stats.get(self._layer)
        extra = ""
        if stats:
            extra = (f"<br>mean {stats['per_channel_mean'][channel]:.3g}, "
                     f"max {stats['per_channel_max'][channel]:.3g}")
        self.channel_title.setText(f"<b>Channel {channel}</b>{extra}")
        self.current_channel = channel
