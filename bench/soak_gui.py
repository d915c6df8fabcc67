"""The soak's request loops with Qt (bench/bench_soak.py phases 5 and 6): the GUI's job runner alone, and
the real main window with its Grad-CAM and Activations tabs (offscreen). Each returns the resident
memory after request k as bench_soak's other loops do."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from bench_soak import SAMPLED_AT, _conv_layer, _series, rss_mb


def phase_runner(model_path: str, image: str, requests: int) -> dict:
    import numpy as np
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui_gc import install_gui_garbage_collector
    from app.jobs import JobRunner
    from engine.data.images import read_rgb_resized
    from engine.models.loading import load_model

    app = QApplication.instance() or QApplication([])
    install_gui_garbage_collector(app)  # as app.main's create_application does
    runner = JobRunner()
    failures: list[str] = []
    runner.error_reported.connect(lambda name, message, details: failures.append(f"{name}: {message}"))

    def run_job(name, fn):
        loop = QEventLoop()
        box: dict = {}
        handle = runner.start(name, fn, group=name)
        handle.finished.connect(lambda value: box.setdefault("value", value))
        handle.ended.connect(loop.quit)
        QTimer.singleShot(120_000, loop.quit)
        if handle.running:
            loop.exec()
        if "value" not in box:
            raise SystemExit(f"{name} did not finish: {failures[-1:] or 'timeout'}")
        return box["value"]

    loaded = run_job("Loading model", lambda emit, cancel: load_model(model_path))  # once, as the GUI does
    layer = _conv_layer(model_path)
    pixels = read_rgb_resized(image, loaded.input_size or 48).astype("float32")

    def cam_job(emit, cancel):
        from engine.inspect.cam import compute_cam

        return compute_cam(loaded.model, pixels, method="gradcam")

    def act_job(emit, cancel):
        from engine.inspect.activations import channel_grid, compute_activations

        values = compute_activations(loaded.model, pixels, [layer])
        return channel_grid(values[layer])

    samples: dict[int, float] = {}
    started = time.perf_counter()
    for i in range(1, requests + 1):
        cam = run_job("Grad-CAM", cam_job)
        grid = run_job("Activations", act_job)
        app.processEvents()
        if i == 1:
            assert np.asarray(grid).ndim == 2 and cam is not None
        if i in SAMPLED_AT or i == requests:
            samples[i] = rss_mb()
    runner.wait_idle(10_000)
    app.processEvents()
    import gc

    gc.collect()
    return {"seconds": time.perf_counter() - started, "layer": layer, "errors": failures,
            "runner_children_after": len(runner.children()), "rss_mb_after_gc_collect": rss_mb(),
            **_series(samples, requests)}


def phase_window(model_path: str, images: list[str], requests: int) -> dict:
    """The user's path: the real MainWindow (offscreen), the model opened through the shared context
    as the model picker does, then per request the Grad-CAM tab explains an image and the Activations
    tab shows it (every conv layer's statistics and one layer's grid), each tab brought to the front
    first; two images alternate so that every request computes. The Grad-CAM tab starts scoring each
    map's faithfulness as its second job, as for a user; the next request cancels it unless it has
    finished (waiting for the scores made a request ~5 s on 2 busy cores: 500 would take 40 min)."""
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from app.context import AppContext, AppSettings
    from app.launcher import create_application
    from app.main_window import MainWindow

    app = create_application()  # noqa: F841 - installs the GUI's garbage collector policy too
    settings_dir = Path(tempfile.mkdtemp(prefix="soak_window_"))  # the window's settings, removed at the end
    ini = settings_dir / "settings.ini"
    context = AppContext(AppSettings(QSettings(str(ini), QSettings.Format.IniFormat)))
    context.runner.show_dialogs = False
    window = MainWindow(context, load_tf=False)
    window.resize(1280, 800)
    window.show()

    def wait(signal, start, what: str, timeout_ms: int = 120_000) -> None:
        loop, fired = QEventLoop(), []
        signal.connect(loop.quit)
        signal.connect(lambda *_: fired.append(1))
        QTimer.singleShot(timeout_ms, loop.quit)
        start()
        if not fired:
            loop.exec()
        signal.disconnect(loop.quit)
        if not fired:
            raise SystemExit(f"{what}: no answer in {timeout_ms / 1000:.0f} s")

    if not context.tf_is_ready:
        wait(context.tf_ready, context.load_tf, "loading TensorFlow")
    wait(context.model_changed, lambda: context.open_model(model_path), "opening the model")
    cam_tab, act_tab = window.tab("Grad-CAM"), window.tab("Activations")
    errors: list[str] = []
    samples: dict[int, float] = {}
    started = time.perf_counter()
    for i in range(1, requests + 1):
        image = images[i % len(images)]
        for title, tab in (("Grad-CAM", cam_tab), ("Activations", act_tab)):
            window.show_tab(title)
            wait(tab.done, lambda tab=tab: tab.show_image(image), f"request {i} on the {title} tab")
            if tab.last_error:
                errors.append(f"{title} {i}: {tab.last_error}")
                tab.last_error = ""
        app.processEvents()
        if i == 1 and (cam_tab.overlay_image() is None or act_tab.grid_image() is None):
            raise SystemExit("the first request showed no overlay or no activation grid")
        if i in SAMPLED_AT or i == requests:
            samples[i] = rss_mb()
    context.runner.wait_idle(10_000)
    app.processEvents()
    import gc

    gc.collect()
    shutil.rmtree(settings_dir, ignore_errors=True)
    return {"seconds": time.perf_counter() - started, "layer": act_tab.current_layer, "errors": errors[:5],
            "error_count": len(errors), "runner_children_after": len(context.runner.children()),
            "rss_mb_after_gc_collect": rss_mb(), **_series(samples, requests)}
