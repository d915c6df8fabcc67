"""The assembled window: tabs, shortcuts, settings, TensorFlow loaded late, errors, closing mid-job."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[2]
TAB_TITLES = ["Dataset", "Training", "Study", "Evaluation", "Activations", "Filters", "Grad-CAM", "Model"]


def _run_python(code: str, tmp_path, timeout=180) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CONVSCOPE_HOME=str(tmp_path / "home"),
               PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_showing_the_window_imports_no_tensorflow(tmp_path):
    result = _run_python(f"""
        import sys
        from PySide6.QtCore import QSettings, QTimer, QEventLoop
        from app.launcher import create_application
        app = create_application()
        from app.context import AppContext, AppSettings
        from app.main_window import MainWindow
        ctx = AppContext(AppSettings(QSettings({str(tmp_path / 's.ini')!r}, QSettings.Format.IniFormat)))
        win = MainWindow(ctx, load_tf=False)
        win.show()
        loop = QEventLoop(); win.first_painted.connect(loop.quit); QTimer.singleShot(10000, loop.quit); loop.exec()
        for title, tab in win.tabs.items():
            win.show_tab(title); app.processEvents()
        assert "tensorflow" not in sys.modules, "window imported TensorFlow"
        assert "keras" not in sys.modules
        assert not ctx.tf_is_ready
        loop = QEventLoop(); ctx.tf_ready.connect(loop.quit); ctx.load_tf(); QTimer.singleShot(120000, loop.quit); loop.exec()
        assert ctx.tf_is_ready and "tensorflow" in sys.modules
        win.close()
        sys.stderr.write("OK\\n")
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stderr


def test_cli_arguments_do_not_import_qt(tmp_path):
    from imagegen import make_shapes_dataset

    root = make_shapes_dataset(tmp_path / "shapes", per_class=3)
    result = _run_python(f"""
        import sys
        from app.launcher import main
        code = main(["scan", {str(root)!r}])
        assert "PySide6" not in sys.modules
        sys.exit(code)
    """, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


def test_tabs_shortcuts_and_persisted_state(context, qtbot, app_settings):
    from PySide6.QtCore import Qt

    from app.main_window import MainWindow

    win = MainWindow(context, load_tf=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    assert [win.tab_widget.tabText(i) for i in range(win.tab_widget.count())] == TAB_TITLES
    assert not win.windowIcon().isNull()
    assert [a.shortcut().toString() for a in win.tab_actions] == [f"Ctrl+{i}" for i in range(1, 9)]
    assert win.open_dataset_action.shortcut().toString() == "Ctrl+O"
    assert win.start_training_action.shortcut().toString() == "Ctrl+R"
    assert win.cancel_action.shortcut() == Qt.Key.Key_Escape
    win.tab_actions[2].trigger()
    assert win.tab_widget.currentIndex() == 2
    win.tab_actions[7].trigger()
    assert win.tab_widget.tabText(win.tab_widget.currentIndex()) == "Model"
    win.resize(1100, 700)
    win.close()
    assert app_settings.value("window/tab", "", str) == "Model"
    again = MainWindow(context, load_tf=False)
    qtbot.addWidget(again)
    assert again.tab_widget.tabText(again.tab_widget.currentIndex()) == "Model"
    assert not app_settings.value("window/geometry").isEmpty()  # (offscreen clamps sizes to its 800x600 screen)
    again.close()


def test_tf_controls_wait_for_tensorflow(window, qtbot):
    training = window.tab("Training")
    assert not training.form.start_button.isEnabled()
    assert "Loading TensorFlow" in training.form.tf_gate.text()
    with qtbot.waitSignal(window.context.tf_ready, timeout=120_000):
        window.context.load_tf()
    assert training.form.start_button.isEnabled()
    assert window.tf_label.text() == "TensorFlow ready"


def test_recent_datasets_in_the_file_menu(window, qtbot, shapes):
    tab = window.tab("Dataset")
    with qtbot.waitSignal(tab.done, timeout=30_000):
        tab.open_folder(str(shapes))
    window.recent_datasets_menu.aboutToShow.emit()  # the user opens the menu
    actions = [a.text() for a in window.recent_datasets_menu.actions()]
    assert str(shapes) in actions


def test_an_engine_error_shows_the_message_and_leaves_the_app_usable(window, qtbot, monkeypatch, tmp_path, shapes):
    from PySide6.QtWidgets import QMessageBox

    boxes = []
    monkeypatch.setattr(QMessageBox, "open", lambda self: boxes.append(self.text()))
    window.context.runner.show_dialogs = True
    tab = window.tab("Dataset")
    with qtbot.waitSignal(tab.done, timeout=30_000):
        tab.open_folder(str(tmp_path / "missing"))
    assert len(boxes) == 1 and "missing" in boxes[0]
    assert "missing" in window.statusBar().currentMessage()
    with qtbot.waitSignal(tab.done, timeout=30_000):
        tab.open_folder(str(shapes))
    assert tab.chart.counts["circle"] == 12


def test_closing_the_window_during_a_job_exits_cleanly(window, qtbot):
    started = threading.Event()
    stopped = threading.Event()

    def job(emit, cancel):
        started.set()
        while not cancel.cancelled:
            time.sleep(0.005)
        time.sleep(0.1)
        stopped.set()
        return None

    handle = window.context.runner.start("long job", job, group="Training")
    assert started.wait(5)
    t0 = time.monotonic()
    window.close()
    assert time.monotonic() - t0 < 0.5 and not window.isVisible()  # gone at once (issue 14, bug 3)
    qtbot.waitUntil(lambda: stopped.is_set() and not window.context.runner.busy, timeout=5_000)
    assert handle.outcome == "cancelled"


def test_escape_cancels_the_current_tabs_job(window, qtbot, job_until_cancelled):
    from PySide6.QtCore import Qt

    window.show_tab("Training")
    handle = window.context.runner.start("Training", job_until_cancelled, group="training")
    with qtbot.waitSignal(handle.cancelled, timeout=3_000):
        qtbot.keyClick(window, Qt.Key.Key_Escape)


def process_loop_target(emit, cancel):
    from engine.events import Status

    emit(Status("running in a child process"))
    while not cancel.cancelled:
        time.sleep(0.005)
    time.sleep(0.1)  # a little clean-up after the cancel
    return None


def test_closing_the_window_during_a_process_job_exits_cleanly(window, qtbot):
    runner = window.context.runner
    handle = runner.start_process("Training", process_loop_target, group="training")
    with qtbot.waitSignal(handle.engine_event, timeout=60_000):
        pass
    t0 = time.monotonic()
    window.close()
    assert time.monotonic() - t0 < 0.5 and not window.isVisible()
    qtbot.waitUntil(lambda: not runner.busy and not handle.process_job.process.is_alive(), timeout=15_000)
    assert handle.outcome == "cancelled"


def test_hidden_tabs_are_built_after_the_first_paint(context, qtbot):
    from app.main_window import MainWindow
    from app.tab_registry import TAB_TITLES as REGISTERED, load_tab_classes

    assert [cls.title for cls in load_tab_classes()] == REGISTERED == TAB_TITLES
    win = MainWindow(context, load_tf=False)
    qtbot.addWidget(win)
    assert list(win.tabs.built()) == ["Dataset"]  # only the current tab before the window shows
    with qtbot.waitSignal(win.first_painted, timeout=10_000):
        win.show()
    qtbot.waitUntil(lambda: len(win.tabs.built()) == len(TAB_TITLES), timeout=10_000)
    assert win.tab("Training").isVisibleTo(win) is False  # built, in its hidden page
    win.show_tab("Training")
    assert win.tab("Training").isVisible()
    win.close()


def test_screenshots_are_written_whole_or_not_at_all(qtbot, tmp_path, monkeypatch):
    from PIL import Image
    from PySide6.QtGui import QPixmap
    from PySide6.QtWidgets import QLabel

    from app.screenshot import save_grab

    label = QLabel("ConvScope")
    qtbot.addWidget(label)
    label.resize(120, 40)
    folder = tmp_path / "shots"
    folder.mkdir()
    target = folder / "shot.png"
    save_grab(label, target)
    with Image.open(target) as image:
        assert image.size[0] >= 120 and image.size[1] >= 40  # (device pixels: ≥ on high-DPI)
    before = target.read_bytes()

    monkeypatch.setattr(QPixmap, "save", lambda self, *args: False)  # Qt cannot write (e.g. no space)
    with pytest.raises(OSError):
        save_grab(label, target)
    assert target.read_bytes() == before  # the previous screenshot is intact
    assert [p.name for p in folder.iterdir()] == ["shot.png"]  # no temp file left


def test_tabs_ask_each_other_through_context_signals(window, qtbot, tmp_path):
    """'Explain this image' and 'open this run' reach the answering tab through the shared context
    (no tab looks another up), and an image chosen on one tab is offered on the others."""
    from app.tab_registry import TAB_TITLES as WINDOW_TITLES
    from engine.paths import resources_dir

    photo = str(sorted((resources_dir() / "samples").glob("*.jpg"))[0])
    activations = window.tab("Activations")
    window.context.show_tab.emit("Grad-CAM")
    window.context.explain_image.emit(photo)
    assert WINDOW_TITLES[window.tab_widget.currentIndex()] == "Grad-CAM"
    assert window.tab("Grad-CAM").image_picker.current_path() == photo
    assert activations.image_picker.combo.findData(photo) >= 0  # offered, not forced on that tab
    assert activations.image_picker.current_path() != photo

    run_dir = tmp_path / "my-run"
    run_dir.mkdir()
    window.tab("Training")  # built, as after the first paint
    window.context.show_tab.emit("Evaluation")
    window.context.open_run.emit(str(run_dir))
    assert WINDOW_TITLES[window.tab_widget.currentIndex()] == "Evaluation"
    assert "my-run: not evaluated yet" in window.tab("Evaluation").summary_label.text()
