"""GUI test fixtures: offscreen Qt, settings in a temporary ini file (never the developer's own),
error dialogs recorded instead of shown, and a ready-made context / main window."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

import gc  # noqa: E402

from PySide6.QtCore import QCoreApplication, QSettings  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def gui_thread_garbage_collection(qapp):
    """As in the app: cyclic garbage collection runs only on the GUI thread (a collection in a job
    thread — a dataset scan's pool — destroyed Qt objects left by earlier tests there and crashed)."""
    from app.gui_gc import install_gui_garbage_collector

    collector = install_gui_garbage_collector(qapp)
    yield collector
    collector.stop()


@pytest.fixture(autouse=True)
def collect_garbage_after_the_test(gui_thread_garbage_collection):
    """Qt objects a test leaves in reference cycles are destroyed here, on the main thread; non-GUI
    tests run later in the same session get Python's automatic collection back."""
    gc.disable()
    yield
    gc.collect()
    gc.enable()


@pytest.fixture(autouse=True)
def isolated_qsettings(tmp_path, monkeypatch):
    """Every QSettings the app might create defaults to a per-test folder and organisation."""
    folder = tmp_path / "qsettings"
    folder.mkdir()
    for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
        QSettings.setPath(QSettings.Format.IniFormat, scope, str(folder))
        QSettings.setPath(QSettings.Format.NativeFormat, scope, str(folder))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QCoreApplication.setOrganizationName("ConvScopeTest")
    QCoreApplication.setApplicationName("ConvScopeTest")
    return folder


@pytest.fixture
def app_settings(tmp_path):
    from app.context import AppSettings

    return AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))


@pytest.fixture
def errors():
    """A list the runner's errors go to (no modal dialogs in tests)."""
    return []


@pytest.fixture
def context(qapp, app_settings, errors):
    from app.context import AppContext
    from app.theme import apply_theme

    apply_theme(qapp)
    ctx = AppContext(app_settings)
    ctx.runner.show_dialogs = False
    ctx.runner.error_reported.connect(lambda name, message, details: errors.append((name, message, details)))
    yield ctx
    ctx.runner.cancel_all_and_wait(20_000)


@pytest.fixture
def open_tab(qtbot, context):
    """``open_tab(TabClass)``: the tab on this test's context, at 1280×800, closed with the test."""

    def make(tab_class):
        tab = tab_class(context)
        qtbot.addWidget(tab)
        tab.resize(1280, 800)
        return tab

    return make


@pytest.fixture
def tf_context(context, qtbot):
    """A context whose TensorFlow is loaded."""
    with qtbot.waitSignal(context.tf_ready, timeout=120_000):
        context.load_tf()
    return context


@pytest.fixture
def window(context, qtbot):
    from app.main_window import MainWindow

    win = MainWindow(context, load_tf=False)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


@pytest.fixture
def shapes(tmp_path):
    from imagegen import make_shapes_dataset

    return make_shapes_dataset(tmp_path / "shapes", per_class=12, size=48)


@pytest.fixture
def image_path(tmp_path):
    """A 44x36 photo with a yellow square (tmp_path/square.png), to explain or predict."""
    from imagegen import write_square_photo

    return write_square_photo(tmp_path)


@pytest.fixture
def job_until_cancelled():
    """A job (``emit, cancel -> None``) that idles until it is cancelled, to cancel from the GUI."""
    import time

    def job(emit, cancel):
        while not cancel.cancelled:
            time.sleep(0.002)

    return job
