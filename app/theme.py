"""Look and feel: Fusion style following the system's light or dark palette, pyqtgraph colours
taken from that palette, high-DPI policy, and the app icon (drawn with QPainter)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QImage, QPainter, QPalette, QPen
from PySide6.QtWidgets import QApplication

ACCENT = QColor("#2f7fd8")
# Colours of plotted series, readable on light and dark backgrounds.
SERIES_COLORS = ["#2f7fd8", "#e8702a", "#3aa655", "#c23b7a", "#8a63d2", "#b8952a", "#1fa3a3", "#d94848"]


def set_high_dpi_policy() -> None:
    """Call before the QApplication exists: fractional scale factors pass through (no blurry
    rounding on 125 %/150 % screens). Qt 6 enables high-DPI scaling itself."""
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)


def apply_theme(app: QApplication, plots: bool = True) -> None:
    """Fusion with the system palette (Qt ≥ 6.5 gives Fusion a dark palette when the system is
    dark); re-applies pyqtgraph colours when the system scheme changes. ``plots=False`` leaves
    pyqtgraph unimported (a fast launch): :func:`ensure_pyqtgraph_colors` then syncs them before
    the first plot is made."""
    app.setStyle("Fusion")
    app.setPalette(app.style().standardPalette())
    if plots:
        sync_pyqtgraph_colors()
    hints = app.styleHints()
    if hasattr(hints, "colorSchemeChanged"):
        hints.colorSchemeChanged.connect(_on_scheme_changed)


def _on_scheme_changed(*_args) -> None:
    app = QApplication.instance()
    if app is not None:
        app.setPalette(app.style().standardPalette())
        if _synced:
            sync_pyqtgraph_colors()


def is_dark() -> bool:
    app = QApplication.instance()
    if app is None:
        return False
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


_synced = False


def ensure_pyqtgraph_colors() -> None:
    """Sync pyqtgraph's colours once (imports pyqtgraph); later calls are free."""
    if not _synced:
        sync_pyqtgraph_colors()


def sync_pyqtgraph_colors() -> None:
    global _synced  # noqa: PLW0603
    import pyqtgraph as pg  # noqa: PLC0415

    app = QApplication.instance()
    if app is None:
        return
    _synced = True
    palette = app.palette()
    pg.setConfigOptions(
        background=palette.color(QPalette.ColorRole.Base),
        foreground=palette.color(QPalette.ColorRole.Text),
        antialias=True,
    )


def icon_path() -> Path:
    from engine.paths import resources_dir  # noqa: PLC0415

    return resources_dir() / "icons" / "convscope.png"


def app_icon() -> QIcon:
    path = icon_path()
    if path.exists():
        return QIcon(str(path))
    return QIcon(_paint_icon_pixmap(256))


def _paint_icon_pixmap(size: int):
    from PySide6.QtGui import QPixmap  # noqa: PLC0415

    image = draw_icon(size)
    return QPixmap.fromImage(image)


def draw_icon(size: int = 256) -> QImage:
    """The app icon: a rounded blue tile with a 3×3 convolution grid and a magnifier lens."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    s = size / 256.0
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#1f4e8c"))
    p.drawRoundedRect(QRectF(8 * s, 8 * s, 240 * s, 240 * s), 48 * s, 48 * s)
    # 3x3 kernel grid, shades like a learned filter
    shades = ["#9cc7f5", "#5b9de6", "#2f7fd8", "#5b9de6", "#e8f2fd", "#5b9de6", "#2f7fd8", "#5b9de6", "#9cc7f5"]
    cell, gap, origin = 44 * s, 8 * s, QPointF(40 * s, 40 * s)
    for i, shade in enumerate(shades):
        row, col = divmod(i, 3)
        p.setBrush(QColor(shade))
        p.drawRoundedRect(QRectF(origin.x() + col * (cell + gap), origin.y() + row * (cell + gap), cell, cell),
                          8 * s, 8 * s)
    # magnifier
    pen = QPen(QColor("#ffb547"), 16 * s)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    p.setPen(pen)
    p.setBrush(QColor(255, 181, 71, 60))
    p.drawEllipse(QPointF(150 * s, 150 * s), 48 * s, 48 * s)
    p.drawLine(QPointF(185 * s, 185 * s), QPointF(222 * s, 222 * s))
    p.end()
    return image
