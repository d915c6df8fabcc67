"""Screenshot the Study tab showing a finished study, and its report.html rendered by headless Chromium.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshot_study.py STUDY_DIR OUT_DIR

writes ``OUT_DIR/study_tab.png`` (the main window, 1280×800, Study tab, the study opened as
"Open study…" does) and ``OUT_DIR/study_report.png`` (``chromium --headless --screenshot`` of the
report, 1280 px wide, tall enough for every section). Settings go to a temporary folder.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPORT_SIZE = (1280, 2800)


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
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={work / 'chromium'}", f"--window-size={REPORT_SIZE[0]},{REPORT_SIZE[1]}",
                    f"--screenshot={target}", (study / "report.html").resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)


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
