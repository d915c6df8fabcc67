"""The faithfulness panel under a heatmap: deletion/insertion curves, the one-line verdict, the sanity flag.

It only renders an engine ``Trust`` (:func:`engine.inspect.explain.assess`): the explained map's
deletion and insertion curves in colour, a random map's dashed in grey, so the gap between them is
what the eye reads; the verdict line ("removing the top 10% hottest pixels drops the score by 62%; a
random map: 8%"), the AUCs in the tooltip, and the sanity check, in the warning colour when flagged.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.theme import SERIES_COLORS, ensure_pyqtgraph_colors

PLOT_HEIGHT = 150
WARNING_STYLE = "color: #c0392b; font-weight: bold;"


class FaithfulnessPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trust = None
        ensure_pyqtgraph_colors()
        self.plot = pg.PlotWidget(self)
        self.plot.setFixedHeight(PLOT_HEIGHT)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "share of pixels removed / revealed")
        self.plot.setLabel("left", "probability")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setXRange(0, 1, padding=0.02)
        key = (f"<span style='color:{SERIES_COLORS[0]}'>━ deletion</span> &nbsp; "
               f"<span style='color:{SERIES_COLORS[1]}'>━ insertion</span> &nbsp; "
               "<span style='color:#999999'>╍ a random map</span>")
        self.key = QLabel(key, self)
        self.verdict = QLabel("", self)
        self.verdict.setWordWrap(True)
        self.sanity = QLabel("", self)
        self.sanity.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("<b>Can I trust this map?</b>", self))
        layout.addWidget(self.plot)
        layout.addWidget(self.key)
        layout.addWidget(self.verdict)
        layout.addWidget(self.sanity)
        self.clear()

    def clear(self, text: str = "") -> None:
        self.trust = None
        self.plot.clear()
        self.verdict.setText(text)
        self.verdict.setToolTip("")
        self.sanity.setText("")

    def show_trust(self, trust) -> None:
        """Draw ``trust`` (an engine Trust) — or say why there is none (``trust`` a string)."""
        if isinstance(trust, str) or trust is None:
            self.clear(trust or "")
            return
        self.clear()
        self.trust = trust
        scores = trust.faithfulness
        mine, rand = scores.explained, scores.baselines.get("random")
        curves = [("deletion", mine.deletion, SERIES_COLORS[0], Qt.PenStyle.SolidLine),
                  ("insertion", mine.insertion, SERIES_COLORS[1], Qt.PenStyle.SolidLine)]
        if rand is not None:
            curves += [("random deletion", rand.deletion, "#999999", Qt.PenStyle.DashLine),
                       ("random insertion", rand.insertion, "#999999", Qt.PenStyle.DashLine)]
        for _, curve, colour, style in curves:
            self.plot.plot(curve.fractions, curve.scores, pen=pg.mkPen(colour, width=2, style=style))
        top = max(float(c.scores.max()) for _, c, _, _ in curves)
        self.plot.setYRange(0, max(top, 1e-6) * 1.05, padding=0)
        self.verdict.setText(scores.verdict()[0].upper() + scores.verdict()[1:] + ".")
        self.verdict.setToolTip("\n".join(trust.lines()))
        check = trust.sanity
        if check is not None:
            self.sanity.setText(check.summary())
            self.sanity.setStyleSheet(WARNING_STYLE if check.flagged else "")
