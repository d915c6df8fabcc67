"""Model tab: the layer graph of the loaded model, laid out by depth.

The DAG comes from :func:`engine.inspect.graph.model_dag` (the public Keras config), so residual
additions and Inception-style branches show as branches. A nested model (the book's
conv base inside a Sequential) is one box; double-click it to open it (a drill-down with a
breadcrumb back). Selecting a layer emits ``context.layer_selected(path)``; the Activations,
Filters and Grad-CAM tabs listen and select it too.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QWidget,
)

from app.tabs.inspection import InspectionTab
from engine.inspect.graph import GraphNode, is_nested_model, model_dag

BOX_W = 210
BOX_H = 62
GAP_X = 28
GAP_Y = 36

_CONV_COLOR = QColor(214, 231, 250)
_MODEL_COLOR = QColor(255, 236, 200)
_IO_COLOR = QColor(228, 228, 228)
_OTHER_COLOR = QColor(240, 244, 236)


# -- graphics -------------------------------------------------------------------------------
class LayerBox(QGraphicsRectItem):
    def __init__(self, node: GraphNode, path: str) -> None:
        super().__init__(0, 0, BOX_W, BOX_H)
        self.node = node
        self.path = path
        if node.nested:
            color = _MODEL_COLOR
        elif node.class_name == "InputLayer":
            color = _IO_COLOR
        elif "Conv" in node.class_name:
            color = _CONV_COLOR
        else:
            color = _OTHER_COLOR
        self.setBrush(QBrush(color))
        self.setPen(QPen(QColor(120, 120, 120), 1))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable, True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        bold = QFont()
        bold.setBold(True)
        title = QGraphicsSimpleTextItem(self._elide(node.name, 26), self)
        title.setFont(bold)
        title.setText(self._fit(node.name, bold))
        title.setPos(6, 4)
        kind = node.class_name + ("  ▸ open (double-click)" if node.nested else "")
        kind_item = QGraphicsSimpleTextItem("", self)
        kind_item.setText(self._fit(kind, kind_item.font()))
        kind_item.setPos(6, 22)
        params = f"{node.params:,} params" if node.params else ""
        shape_item = QGraphicsSimpleTextItem("", self)
        shape = node.output_shape.replace("(None, ", "(")  # without the batch axis (the tooltip has it)
        shape_item.setText(self._fit(f"{shape}  {params}".strip(), shape_item.font()))
        shape_item.setPos(6, 40)
        self.setToolTip(f"{path}\n{node.class_name}\noutput {node.output_shape}\n{node.params:,} parameters")

    @staticmethod
    def _fit(text: str, font: QFont) -> str:
        """``text`` elided (in the middle) to the box's inner width in ``font`` (the tooltip has it all)."""
        return QFontMetrics(font).elidedText(text, Qt.TextElideMode.ElideMiddle, BOX_W - 12)

    @staticmethod
    def _elide(text: str, limit: int) -> str:
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def paint(self, painter: QPainter, option, widget=None) -> None:
        pen = QPen(QColor(30, 100, 200), 3) if self.isSelected() else self.pen()
        painter.setPen(pen)
        painter.setBrush(self.brush())
        painter.drawRoundedRect(self.rect(), 6, 6)


class GraphView(QGraphicsView):
    """The scene's view: wheel zooms, drag pans, double-click on a nested model drills in."""

    open_nested = Signal(str)  # node name

    def __init__(self, scene: QGraphicsScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override
        factor = 1.15 if event.angleDelta().y() > 0 else 1 / 1.15
        self.scale(factor, factor)

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt override
        item = self.itemAt(event.position().toPoint())
        while item is not None and not isinstance(item, LayerBox):
            item = item.parentItem()
        if isinstance(item, LayerBox) and item.node.nested:
            self.open_nested.emit(item.node.name)
            return
        super().mouseDoubleClickEvent(event)


class ModelTab(InspectionTab):
    """The layer graph; the place where a layer is chosen for every inspection tab."""

    title = "Model"
    uses_image = False

    def __init__(self, context, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self._model = None
        self._stack: list[tuple[str, object]] = []  # (name, keras model) from the root down
        self._boxes: dict[str, LayerBox] = {}
        self._emitting = False

        self.back_button = QPushButton("◂ Up", self)
        self.back_button.setToolTip("Back to the enclosing model")
        self.fit_button = QPushButton("Fit", self)
        self.breadcrumb = QLabel("", self)
        self.scene = QGraphicsScene(self)
        self.view = GraphView(self.scene, self)
        self.details = QTextBrowser(self)
        self.details.setOpenLinks(False)
        self.details.setMinimumWidth(240)

        nav = QHBoxLayout()
        nav.addWidget(self.back_button)
        nav.addWidget(self.breadcrumb, 1)
        nav.addWidget(QLabel("Wheel: zoom · drag: pan · double-click an orange box to open it", self))
        nav.addWidget(self.fit_button)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.view)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        self.assemble(nav, (splitter, 1), status=False)

        self.back_button.clicked.connect(self.go_up)
        self.fit_button.clicked.connect(self.fit)
        self.view.open_nested.connect(self.open_nested)
        self.scene.selectionChanged.connect(self._on_selection_changed)
        self._show_empty()
        self.follow_shared_model(layers=False)

    # -- public -----------------------------------------------------------------------------
    @Slot(object)
    def set_model(self, loaded) -> None:
        model = getattr(loaded, "model", loaded)
        self._model = model
        if model is None:
            self._stack = []
            self._show_empty()
            return
        self._stack = [(model.name, model)]
        self._rebuild()
        self.done.emit()

    def select_layer(self, path: str) -> bool:
        """Open the (nested) model holding ``path`` and select its box. Returns False if unknown."""
        if self._model is None or not path:
            return False
        parts = path.split("/")
        stack = [(self._model.name, self._model)]
        current = self._model
        for name in parts[:-1]:
            try:
                inner = current.get_layer(name)
            except (ValueError, KeyError):
                return False
            if not is_nested_model(inner):
                return False
            stack.append((name, inner))
            current = inner
        if stack != self._stack:
            self._stack = stack
            self._rebuild()
        box = self._boxes.get(path)
        if box is None:
            return False
        self.scene.clearSelection()
        box.setSelected(True)
        self.view.centerOn(box)
        return True

    def selected_path(self) -> str | None:
        items = [item for item in self.scene.selectedItems() if isinstance(item, LayerBox)]
        return items[0].path if items else None

    def node_paths(self) -> list[str]:
        """The layer paths of the boxes shown (tests and screenshot mode)."""
        return list(self._boxes)

    def edges(self) -> list[tuple[str, str]]:
        return list(self._edges)

    @Slot()
    def fit(self) -> None:
        rect = self.scene.itemsBoundingRect()
        if rect.isEmpty():
            return
        self.view.resetTransform()
        view_rect = self.view.viewport().rect()
        scale = min(view_rect.width() / max(rect.width(), 1), view_rect.height() / max(rect.height(), 1))
        if scale < 1.0:
            # keep the boxes readable: fit the width (down to 55 %) and scroll the height
            scale = max(min(view_rect.width() / max(rect.width(), 1), 1.0), 0.55)
            self.view.scale(scale, scale)
            self.view.centerOn(rect.center().x(), rect.top() + view_rect.height() / (2 * scale))
        else:
            self.view.centerOn(rect.center())

    @Slot(str)
    def open_nested(self, name: str) -> None:
        current = self._stack[-1][1]
        inner = current.get_layer(name)
        if is_nested_model(inner):
            self._stack.append((name, inner))
            self._rebuild()

    @Slot()
    def go_up(self) -> None:
        if len(self._stack) > 1:
            child = self._stack.pop()[0]
            self._rebuild()
            box = self._boxes.get(self._prefix() + child)
            if box is not None:
                box.setSelected(True)
                self.view.centerOn(box)

    # -- drawing ----------------------------------------------------------------------------
    def _prefix(self) -> str:
        return "".join(name + "/" for name, _ in self._stack[1:])

    def _show_empty(self) -> None:
        self.scene.clear()
        self._boxes = {}
        self._edges = []
        text = self.scene.addSimpleText("Load a model (above) to see its layer graph.")
        text.setBrush(QBrush(QColor(110, 110, 110)))
        self.breadcrumb.setText("")
        self.back_button.setEnabled(False)
        self.details.setPlainText("")

    def _rebuild(self) -> None:
        self.scene.blockSignals(True)
        self.scene.clear()
        self.scene.blockSignals(False)
        self._boxes = {}
        self._edges: list[tuple[str, str]] = []
        model = self._stack[-1][1]
        nodes = model_dag(model)
        prefix = self._prefix()
        positions: dict[str, QPointF] = {}
        min_col = min((n.column for n in nodes), default=0.0)
        for node in nodes:
            box = LayerBox(node, prefix + node.name)
            x = (node.column - min_col) * (BOX_W + GAP_X)
            y = node.depth * (BOX_H + GAP_Y)
            box.setPos(x, y)
            box.setZValue(1)
            self.scene.addItem(box)
            self._boxes[box.path] = box
            positions[node.name] = QPointF(x, y)
        pen = QPen(QColor(90, 90, 90), 1.4)
        for node in nodes:
            for parent in node.inbound:
                if parent not in positions:
                    continue
                start = positions[parent] + QPointF(BOX_W / 2, BOX_H)
                end = positions[node.name] + QPointF(BOX_W / 2, 0)
                path = QPainterPath(start)
                bend = max(GAP_Y, (end.y() - start.y()) / 2)
                skip = end.y() - start.y() > BOX_H + GAP_Y + 1
                offset = (BOX_W / 2 + GAP_X / 2) if skip and abs(start.x() - end.x()) < 1 else 0
                path.cubicTo(
                    QPointF(start.x() + offset, start.y() + bend),
                    QPointF(end.x() + offset, end.y() - bend),
                    end,
                )
                item = QGraphicsPathItem(path)
                item.setPen(pen)
                item.setZValue(0 if not skip else 2)
                self.scene.addItem(item)
                arrow = QPainterPath(end)
                arrow.lineTo(end + QPointF(-4, -7))
                arrow.lineTo(end + QPointF(4, -7))
                arrow.closeSubpath()
                head = self.scene.addPath(arrow, pen, QBrush(QColor(90, 90, 90)))
                head.setZValue(2)
                self._edges.append((prefix + parent, prefix + node.name))
        self.scene.setSceneRect(self.scene.itemsBoundingRect().adjusted(-20, -20, 20, 20))
        crumbs = " › ".join(name for name, _ in self._stack)
        self.breadcrumb.setText(f"<b>{crumbs}</b> — {len(nodes)} layers")
        self.back_button.setEnabled(len(self._stack) > 1)
        self.details.setHtml(self._summary_html(model, nodes))
        self.fit()

    def _summary_html(self, model, nodes: list[GraphNode]) -> str:
        try:
            total = int(model.count_params())
        except Exception:  # noqa: BLE001
            total = 0
        try:
            trainable = sum(int(w.numpy().size) for w in model.trainable_weights)
        except Exception:  # noqa: BLE001
            trainable = 0
        branches = sum(1 for n in nodes if len(n.inbound) > 1)
        return (
            f"<h3>{model.name}</h3>"
            f"<p>{len(nodes)} layers · {total:,} parameters ({trainable:,} trainable)"
            f"<br>{branches} merge point(s)</p>"
            "<p>Click a box to select that layer in the Activations, Filters and Grad-CAM tabs.</p>"
        )

    def _layer_html(self, box: LayerBox) -> str:
        node = box.node
        model = self._stack[-1][1]
        rows = [
            ("path", box.path),
            ("class", node.class_name),
            ("output", node.output_shape),
            ("parameters", f"{node.params:,}"),
            ("inputs", ", ".join(node.inbound) or "—"),
        ]
        try:
            config = model.get_layer(node.name).get_config()
        except Exception:  # noqa: BLE001 - InputLayer placeholder or custom layer
            config = {}
        for key in ("filters", "kernel_size", "strides", "padding", "activation", "units", "pool_size",
                    "rate", "depth_multiplier", "dilation_rate"):
            if key in config:
                rows.append((key, str(config[key])))
        body = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
        extra = "<p><i>Double-click the box to open this model.</i></p>" if node.nested else ""
        return f"<h3>{node.name}</h3><table cellspacing='4'>{body}</table>{extra}"

    @Slot()
    def _on_selection_changed(self) -> None:
        items = [item for item in self.scene.selectedItems() if isinstance(item, LayerBox)]
        if not items:
            return
        box = items[0]
        self.details.setHtml(self._layer_html(box))
        if box.node.class_name != "InputLayer":
            self.context.layer_selected.emit(box.path)
