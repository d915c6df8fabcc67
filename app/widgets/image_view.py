"""A zoomable, pannable view of a uint8 image (RGB or grey), built on pyqtgraph.

Mouse wheel zooms, dragging pans, a double-click fits the image again. A left click on the
image emits :attr:`ImageView.clicked` with the pixel coordinates (column, row) of the array.
Until the user zooms or pans, the image stays fitted to the view when the view is resized (shown
for the first time, window resized, splitter moved); after that the user's zoom and pan are kept.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal, Slot
from PySide6.QtWidgets import QVBoxLayout, QWidget


def best_columns(count: int, tile_h: int, tile_w: int, view_w: int, view_h: int, margin: int = 2) -> int:
    """How many columns make ``count`` tiles of ``tile_w``×``tile_h`` (``margin`` apart) largest in a
    ``view_w``×``view_h`` view: grids of channels or patterns then fill the view instead of being a
    thin strip across it."""
    if count <= 1 or view_w <= 0 or view_h <= 0:
        return max(1, count)
    best, best_scale = 1, -1.0
    for cols in range(1, count + 1):
        rows = -(-count // cols)
        width, height = cols * (tile_w + margin) - margin, rows * (tile_h + margin) - margin
        # a layout with empty cells counts a little less (a full last row reads better)
        scale = min(view_w / width, view_h / height) * (count / (rows * cols)) ** 0.5
        if scale > best_scale + 1e-9:
            best, best_scale = cols, scale
    return best


class ImageView(QWidget):
    """Shows one ``HxW`` or ``HxWx3`` uint8 array with its pixels square, row 0 at the top."""

    clicked = Signal(int, int)  # x (column), y (row) in array pixels
    resized = Signal()  # the view's size changed (e.g. to re-lay out a grid for the new aspect)

    def __init__(self, parent: QWidget | None = None, placeholder: str = "") -> None:
        super().__init__(parent)
        self._array: np.ndarray | None = None
        self._graphics = pg.GraphicsLayoutWidget(self)
        self._graphics.setBackground(self.palette().window().color())
        self._graphics.ci.setContentsMargins(0, 0, 0, 0)
        self._viewbox: pg.ViewBox = self._graphics.addViewBox(lockAspect=True, invertY=True)
        self._viewbox.setMenuEnabled(False)
        self._auto_fit = True  # refit on resize until the user zooms or pans
        self._viewbox.sigRangeChangedManually.connect(self._on_manual_range)
        self._item = pg.ImageItem(axisOrder="row-major")
        self._viewbox.addItem(self._item)
        self._text = pg.TextItem(placeholder, color=(110, 110, 110), anchor=(0.5, 0.5))
        self._viewbox.addItem(self._text, ignoreBounds=True)
        self._captions: list[pg.TextItem] = []
        self._graphics.scene().sigMouseClicked.connect(self._on_scene_click)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._graphics)
        self.setMinimumSize(120, 120)

    # -- public API -------------------------------------------------------------------------
    def set_image(self, array: np.ndarray | None, keep_view: bool = False) -> None:
        """Show ``array`` (uint8, HxW or HxWx3/4); ``None`` clears. ``keep_view`` keeps the zoom
        and pan when the new image has the same size (used when re-blending an overlay)."""
        if array is None:
            self.clear()
            return
        array = np.ascontiguousarray(array)
        if array.dtype != np.uint8:
            raise TypeError(f"ImageView shows uint8 arrays, got {array.dtype}")
        same_size = self._array is not None and self._array.shape[:2] == array.shape[:2]
        self._array = array
        self._item.setImage(array, levels=(0, 255), autoLevels=False)
        self._text.setVisible(False)
        if not (keep_view and same_size):
            self.fit()

    def image(self) -> np.ndarray | None:
        """The array shown, or ``None``."""
        return self._array

    def displayed_image(self) -> np.ndarray | None:
        """The array as currently rendered (what the user sees), for tests."""
        return None if self._item.image is None else np.asarray(self._item.image)

    def set_captions(self, captions: list[tuple[float, float, str]]) -> None:
        """Small labels at array coordinates (x, y = their top-left corner), drawn at a fixed screen
        size on a dark backing so they stay readable at every zoom; replaces the previous ones."""
        for item in self._captions:
            self._viewbox.removeItem(item)
        self._captions = []
        for x, y, text in captions:
            item = pg.TextItem(text, color=(255, 255, 255), fill=pg.mkBrush(0, 0, 0, 170), anchor=(0, 0))
            item.setPos(x, y)
            self._viewbox.addItem(item, ignoreBounds=True)
            self._captions.append(item)

    def caption_texts(self) -> list[str]:
        return [item.toPlainText() for item in self._captions]

    def clear(self, placeholder: str | None = None) -> None:
        self.set_captions([])
        self._array = None
        self._item.clear()
        if placeholder is not None:
            self._text.setText(placeholder)
        self._text.setVisible(True)
        self._text.setPos(0, 0)
        self._viewbox.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0)

    def set_placeholder(self, text: str) -> None:
        self._text.setText(text)

    @Slot()
    def fit(self) -> None:
        """Show the whole image as large as the view allows (and keep it fitted on resize)."""
        self._auto_fit = True
        if self._array is not None:
            h, w = self._array.shape[:2]
            self._viewbox.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)

    @property
    def auto_fit(self) -> bool:
        """True until the user zooms or pans (then resizing keeps their view)."""
        return self._auto_fit

    def view_size(self) -> tuple[int, int]:
        """(width, height) in device pixels of the area the image is drawn in."""
        rect = self._graphics.viewport().rect()
        return rect.width(), rect.height()

    def view_range(self) -> list[list[float]]:
        return self._viewbox.viewRange()

    def zoom(self, factor: float) -> None:
        """Zoom about the centre (``factor`` > 1 zooms in), as the mouse wheel does."""
        self._auto_fit = False
        self._viewbox.scaleBy((1.0 / factor, 1.0 / factor))

    def click_pixel(self, x: int, y: int) -> None:
        """Behave as if the user clicked pixel (x, y) — used by tests and keyboard access."""
        self.clicked.emit(int(x), int(y))

    # -- events ----------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._auto_fit and self._array is not None:
            self.fit()
        self.resized.emit()

    @Slot(object)
    def _on_manual_range(self, *_args) -> None:
        self._auto_fit = False

    @Slot(object)
    def _on_scene_click(self, event) -> None:
        if self._array is None:
            return
        if event.double():
            self.fit()
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        point: QPointF = self._item.mapFromScene(event.scenePos())
        x, y = int(np.floor(point.x())), int(np.floor(point.y()))
        h, w = self._array.shape[:2]
        if 0 <= x < w and 0 <= y < h:
            self.clicked.emit(x, y)
