"""The study report's pictures as a reader sees them: the validation curves legible at a browser's
width, and the report's screenshot (scripts/screenshot_study.py) showing the whole page."""

from __future__ import annotations

import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine.study import report

ROOT = Path(__file__).resolve().parent.parent
CURVES = {"scratch": [0.61, 0.68, 0.74, 0.79, 0.83, 0.85, 0.86, 0.88, 0.87, 0.89, 0.9, 0.9],
          "scratch+aug": [0.58, 0.63, 0.7, 0.72, 0.77, 0.8],
          "features": [0.88, 0.9, 0.91, 0.905, 0.92]}


def _study_with_curves(folder: Path) -> dict:
    rungs = []
    for index, name in enumerate(("scratch", "scratch+aug", "features", "features-augmented", "finetune"), start=1):
        run_dir = Path("rungs") / f"{index}-{name}"
        entry = {"index": index, "name": name, "run_dir": str(run_dir), "status": "skipped"}
        if name in CURVES:
            (folder / run_dir).mkdir(parents=True)
            rows = "".join(f"{epoch},train,{value}\n" for epoch, value in enumerate(CURVES[name], start=1))
            (folder / run_dir / "history.csv").write_text("epoch,phase,val_accuracy\n" + rows)
            entry["status"] = "finished"
        rungs.append(entry)
    return {"rungs": rungs}


def test_validation_curves_are_legible_at_a_browsers_width(tmp_path):
    """The chart scales with the page (viewBox, full width), has labelled gridlines on both axes
    covering every value, axis titles, a readable font, and a legend beside the plot (not over it)."""
    svg = ET.fromstring(report._curves_svg(tmp_path, _study_with_curves(tmp_path)))
    width, height = (float(v) for v in svg.get("viewBox").split()[2:])
    assert "width:100%" in svg.get("style") and width >= 900  # as wide as the report's column
    assert float(svg.get("font-size")) >= 14
    plot = svg.find("rect")
    left, top = float(plot.get("x")), float(plot.get("y"))
    right, bottom = left + float(plot.get("width")), top + float(plot.get("height"))
    assert right - left >= 0.6 * width and bottom - top >= 0.7 * height
    texts = [(float(t.get("x", 0)), float(t.get("y", 0)), t.text or "") for t in svg.iter("text")]
    y_ticks = sorted(float(s) for x, _, s in texts if x < left and s.replace(".", "").isdigit())
    values = [v for curve in CURVES.values() for v in curve]
    assert 3 <= len(y_ticks) <= 9 and y_ticks[0] <= min(values) and y_ticks[-1] >= max(values)
    step = y_ticks[1] - y_ticks[0]
    assert y_ticks[0] > min(values) - step and y_ticks[-1] < max(values) + step  # spans the data, not 0..1
    x_ticks = [int(s) for _, y, s in texts if y > bottom and s.isdigit()]
    assert x_ticks[0] == 1 and x_ticks[-1] == max(len(c) for c in CURVES.values())
    assert {"epoch", "validation accuracy"} <= {s for *_, s in texts}
    lines = svg.findall("polyline")
    assert len(lines) == len(CURVES)  # one per finished rung
    for line in lines:
        for point in line.get("points").split():
            x, y = (float(v) for v in point.split(","))
            assert left - 0.1 <= x <= right + 0.1 and top - 0.1 <= y <= bottom + 0.1
    legend = {s.split(" (")[0]: x for x, _, s in texts if s.split(" (")[0] in CURVES}
    assert set(legend) == set(CURVES) and min(legend.values()) > right  # beside the plot, hiding no line


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="needs headless Chromium (apt-get install -y chromium)")
def test_report_screenshot_shows_the_whole_page(tmp_path):
    """A report taller than the script's first window, with a blank stretch longer than that window
    before its last line (a red bar at the bottom of a 7,000-px page), is shot to that line and no further."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import screenshot_study
    from PIL import Image

    study = tmp_path / "study"
    study.mkdir()
    (study / "report.html").write_text("<!DOCTYPE html><html><body style='margin:0'><div style='height:7000px'>"
                                       "top</div><div style='height:40px;background:#ff0000'></div></body></html>")
    target = tmp_path / "shot.png"
    screenshot_study.report_screenshot(study, target, tmp_path)
    with Image.open(target) as shot:
        rgb = shot.convert("RGB")
    assert rgb.width == screenshot_study.REPORT_WIDTH
    assert rgb.height == 7040  # cut where the page ends
    assert rgb.getpixel((rgb.width // 2, 7020)) == (255, 0, 0)  # the page's last line is in the picture
