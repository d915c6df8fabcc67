"""Screenshot the Study tab showing a finished study, and its report.html rendered by headless Chromium.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshot_study.py STUDY_DIR OUT_DIR

writes ``OUT_DIR/study_tab.png`` (the main window, 1280×800, Study tab, the study opened as
"Open study…" does) and ``OUT_DIR/study_report.png`` (``chromium --headless --screenshot`` of the
report, 1280 px wide and as tall as the whole page: headless Chromium shoots only its window, so a
copy of the report gets a marker bar after its last line, the window doubles in height until the
bar is in the picture, and the picture is cut just above the bar). Settings go to a temporary folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPORT_WIDTH, FIRST_HEIGHT, MAX_HEIGHT = 1280, 4000, 32000
MARKER_HEX, MARKER_HEIGHT = "#fe01fd", 6  # a colour neither the report's tables nor its heatmaps use
MARKER_COLUMNS = (40, 200, 400)  # inside the report's column (its body has a 24-px margin)


def tab_screenshot(study: Path, target: Path, work: Path) -> None:
    from PySide6.QtCore import QEventLoop, QSettings, QTimer  # noqa: PLC0415

    from app.context import AppContext, AppSettings  # noqa: PLC0415
    from app.launcher import create_application  # noqa: PLC0415
    from app.main_window import MainWindow  # noqa: PLC0415
    from app.screenshot import SIZE, save_grab  # noqa: PLC0415

    app = create_application()
    context = AppContext(AppSettings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat)))
    window = MainWindow(context, load_tf=False)
    window.resize(*SIZE)
    window.show()
    loop = QEventLoop()  # TensorFlow loaded, as a user's window is a little after it opens
    context.tf_ready.connect(loop.quit)
    QTimer.singleShot(180_000, loop.quit)
    context.load_tf()
    loop.exec()
    tab = window.show_tab("Study")
    tab.show_study(str(study))
    for _ in range(20):
        app.processEvents()
    save_grab(window, target)
    window.close()


def report_screenshot(study: Path, target: Path, work: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is missing: apt-get install -y chromium")
    # a copy of the report with a marker bar after its last line: where the bar is, the page ends
    # (the blank under a page looks the same as a page that goes on past the window)
    page = (study / "report.html").read_text(encoding="utf-8")
    marker = f"<div style='height:{MARKER_HEIGHT}px;background:{MARKER_HEX};margin:0'></div>"
    page = page.replace("</body>", marker + "</body>") if "</body>" in page else page + marker
    marked = work / "report-marked.html"
    marked.write_text(page, encoding="utf-8")
    height = FIRST_HEIGHT
    while True:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={work / 'chromium'}", f"--window-size={REPORT_WIDTH},{height}",
                        f"--screenshot={target}", marked.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
        end = marker_row(target)
        if end is not None or height >= MAX_HEIGHT:
            break
        height *= 2  # the page goes on past the window
    crop(target, end if end is not None else height)


def marker_row(path: Path) -> int | None:
    """The first row of the marker bar in the screenshot, or None when the page goes on past it."""
    from PIL import Image  # noqa: PLC0415

    with Image.open(path) as shot:
        rgb = shot.convert("RGB")
    colour = tuple(int(MARKER_HEX[i:i + 2], 16) for i in (1, 3, 5))
    for row in range(rgb.height - MARKER_HEIGHT + 1):
        if all(rgb.getpixel((x, row + dy)) == colour for x in MARKER_COLUMNS for dy in (0, MARKER_HEIGHT - 1)):
            return row
    return None


def crop(path: Path, height: int) -> None:
    from PIL import Image  # noqa: PLC0415

    with Image.open(path) as shot:
        cropped = shot.crop((0, 0, shot.width, height))
    cropped.save(path)


def main() -> int:
    study, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="convscope-study-shot-") as scratch:
        tab_screenshot(study, out / "study_tab.png", Path(scratch))
        report_screenshot(study, out / "study_report.png", Path(scratch))
    print(f"saved {out / 'study_tab.png'} and {out / 'study_report.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
