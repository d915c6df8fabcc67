"""The ``convscope`` entry point.

No arguments → the window. ``--screenshot DIR`` → save one PNG per tab and exit. ``--smoke`` → the
self-check of :mod:`app.smoke` (TensorFlow, the bundled base, a prediction, a Grad-CAM, the window;
one JSON line; exit 0). Any other arguments
→ :func:`engine.cli.main` without importing Qt.
"""

from __future__ import annotations

import logging
import sys

APP_FLAGS = ("--screenshot", "--smoke")


def main(argv: list[str] | None = None) -> int:
    # In a PyInstaller bundle a training/evaluation job process (engine.worker, "spawn") starts this
    # same executable; freeze_support runs the job there and exits — no window, no CLI.
    import multiprocessing  # noqa: PLC0415

    multiprocessing.freeze_support()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in APP_FLAGS:
        from engine.cli import main as cli_main  # noqa: PLC0415

        return cli_main(argv)
    if argv and argv[0] == "--screenshot":
        if len(argv) < 2:
            if sys.stderr is not None:
                sys.stderr.write("convscope: error: --screenshot needs a folder\n")
            return 2
        from app.screenshot import main as screenshot_main  # noqa: PLC0415

        return screenshot_main(argv[1])
    if argv and argv[0] == "--smoke":
        from app.smoke import main as smoke_main  # noqa: PLC0415

        return smoke_main(argv[1:])
    return run_gui()


def setup_logging() -> None:
    """Log to the user's log file (and to stderr when there is one; a windowed build has none)."""
    from app.error_report import log_file_path  # noqa: PLC0415

    root = logging.getLogger("convscope")
    if root.handlers:
        return
    root.setLevel(logging.INFO)
    formatter = logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    try:
        handler = logging.FileHandler(log_file_path(), encoding="utf-8")
        handler.setFormatter(formatter)
        root.addHandler(handler)
    except OSError:
        pass
    if sys.stderr is not None:
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(logging.WARNING)
        stream.setFormatter(formatter)
        root.addHandler(stream)


def create_application(argv: list[str] | None = None):
    """The QApplication with ConvScope's names, style, palette and high-DPI policy."""
    from PySide6.QtWidgets import QApplication  # noqa: PLC0415

    from app.theme import app_icon, apply_theme, set_high_dpi_policy  # noqa: PLC0415

    app = QApplication.instance()
    if app is None:
        set_high_dpi_policy()
        app = QApplication(argv if argv is not None else [sys.argv[0] if sys.argv else "convscope"])
    app.setApplicationName("ConvScope")
    app.setOrganizationName("ConvScope")
    app.setApplicationDisplayName("ConvScope")
    app.setWindowIcon(app_icon())
    apply_theme(app, plots=False)  # pyqtgraph is imported with the first tab that plots
    # Cyclic garbage collection only on the GUI thread: a collection in a job thread would
    # destroy Qt objects there and crash.
    from app.gui_gc import install_gui_garbage_collector  # noqa: PLC0415

    install_gui_garbage_collector(app)
    # A shorter GIL switch interval: the GUI thread gets the interpreter back sooner while
    # TensorFlow's Python-side training loop runs (see bench/bench_gui.py).
    sys.setswitchinterval(0.001)
    return app


def run_gui(smoke: bool = False) -> int:
    setup_logging()
    app = create_application()
    from app.context import AppContext  # noqa: PLC0415
    from app.main_window import MainWindow  # noqa: PLC0415

    context = AppContext()
    window = MainWindow(context)
    if smoke:
        from PySide6.QtCore import QTimer  # noqa: PLC0415

        context.tf_ready.connect(window.close)
        QTimer.singleShot(120_000, window.close)
    window.show()
    code = int(app.exec())
    # Collect the window's reference cycles now, on the GUI thread, while the QApplication exists
    # (not in the interpreter's final collection).
    import gc  # noqa: PLC0415

    del window
    gc.collect()
    return code


if __name__ == "__main__":
    sys.exit(main())
