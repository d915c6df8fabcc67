"""A list model of image files whose thumbnails load on demand, off the GUI thread.

The view (a QListView in IconMode with uniform item sizes) only asks for the rows it shows, so a
folder of thousands of files costs only the visible thumbnails. Decoding runs in a small thread pool
(QImageReader with a scaled size: JPEGs decode at reduced resolution; PIL as the fallback); the
result comes back as a QImage through a queued signal and is cached (LRU)."""

from __future__ import annotations

import os
from collections import OrderedDict

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor, QIcon, QImage, QImageReader, QPixmap
from PySide6.QtWidgets import QListView

THUMB_SIZE = 96
CACHE_SIZE = 3000


def load_thumbnail(path: str, size: int = THUMB_SIZE) -> QImage:
    """Decode ``path`` scaled to fit ``size`` (any thread). Returns a null QImage when unreadable."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)  # EXIF orientation
    original = reader.size()
    if original.isValid() and original.width() > 0 and original.height() > 0:
        reader.setScaledSize(original.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if not image.isNull():
        return image
    try:  # formats Qt has no plugin for (e.g. webp/tiff in some builds)
        from PIL import Image, ImageOps  # noqa: PLC0415

        with Image.open(path) as pil:
            pil.draft("RGB", (size, size))
            pil = ImageOps.exif_transpose(pil).convert("RGB")
            pil.thumbnail((size, size))
            data = pil.tobytes()
            return QImage(data, pil.width, pil.height, pil.width * 3, QImage.Format.Format_RGB888).copy()
    except Exception:  # noqa: BLE001 - an unreadable thumbnail is shown as a blank tile
        return QImage()


class _Signals(QObject):
    loaded = Signal(int, str, QImage)  # generation, path, image


class _ThumbJob(QRunnable):
    def __init__(self, generation: int, path: str, size: int, signals: _Signals) -> None:
        super().__init__()
        self.generation, self.path, self.size, self.signals = generation, path, size, signals

    def run(self) -> None:
        self.signals.loaded.emit(self.generation, self.path, load_thumbnail(self.path, self.size))


class ThumbnailModel(QAbstractListModel):
    PathRole = Qt.ItemDataRole.UserRole + 1
    LabelRole = Qt.ItemDataRole.UserRole + 2

    thumbnail_loaded = Signal(str)

    def __init__(self, parent: QObject | None = None, size: int = THUMB_SIZE) -> None:
        super().__init__(parent)
        self._items: list[tuple[str, str]] = []  # (path, caption)
        self._rows: dict[str, int] = {}
        self._size = size
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._generation = 0
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)
        self._signals = _Signals(self)
        self._signals.loaded.connect(self._on_loaded)
        placeholder = QPixmap(size, size)
        placeholder.fill(QColor(128, 128, 128, 40))
        self._placeholder = QIcon(placeholder)
        self.load_requests = 0

    def set_items(self, items: list[tuple[str, str]]) -> None:
        self.beginResetModel()
        self._generation += 1
        self._pool.clear()  # drop queued decodes of the previous list
        self._pending.clear()
        self._items = list(items)
        self._rows = {path: row for row, (path, _) in enumerate(self._items)}
        self.endResetModel()

    def paths(self) -> list[str]:
        return [path for path, _ in self._items]

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._items):
            return None
        path, caption = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return caption
        if role == Qt.ItemDataRole.ToolTipRole:
            return path
        if role == self.PathRole:
            return path
        if role == Qt.ItemDataRole.DecorationRole:
            pixmap = self._cache.get(path)
            if pixmap is not None:
                self._cache.move_to_end(path)
                return QIcon(pixmap)
            self._request(path)
            return self._placeholder
        if role == Qt.ItemDataRole.SizeHintRole:
            return QSize(self._size + 16, self._size + 28)
        return None

    def _request(self, path: str) -> None:
        if path in self._pending:
            return
        self._pending.add(path)
        self.load_requests += 1
        self._pool.start(_ThumbJob(self._generation, path, self._size, self._signals))

    @Slot(int, str, QImage)
    def _on_loaded(self, generation: int, path: str, image: QImage) -> None:
        self._pending.discard(path)
        if generation != self._generation:
            return
        pixmap = QPixmap.fromImage(image) if not image.isNull() else QPixmap()
        if pixmap.isNull():
            pixmap = QPixmap(self._size, self._size)
            pixmap.fill(QColor(200, 60, 60, 60))
        self._cache[path] = pixmap
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        row = self._rows.get(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])
        self.thumbnail_loaded.emit(path)

    def cached(self, path: str) -> bool:
        return path in self._cache

    def shutdown(self, timeout_ms: int = 2000) -> None:
        self._pool.clear()
        self._pool.waitForDone(timeout_ms)


def caption_for(path: str) -> str:
    name = os.path.basename(path)
    return name if len(name) <= 18 else name[:8] + "…" + name[-8:]


def thumbnail_view(model: ThumbnailModel, on_open) -> QListView:
    """A grid of ``model``'s thumbnails; double-clicking one calls ``on_open(path)``."""
    view = QListView()
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setIconSize(QSize(model._size, model._size))
    view.setUniformItemSizes(True)
    view.setResizeMode(QListView.ResizeMode.Adjust)
    view.setMovement(QListView.Movement.Static)
    view.setModel(model)
    view.doubleClicked.connect(path_slot(on_open))
    return view


def path_slot(action):
    """A slot for a view's ``clicked`` / ``doubleClicked``: ``action(path)`` of the thumbnail there, if any."""

    def slot(index: QModelIndex) -> None:
        path = index.data(ThumbnailModel.PathRole)
        if path:
            action(path)

    return slot
