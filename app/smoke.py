"""``convscope --smoke``: a self-check of an installed or packaged ConvScope, in one process.

Steps, each timed: import TensorFlow/Keras; load the ImageNet base ``efficientnet-lite0`` (inside a
PyInstaller bundle it must come pre-converted from ``resources/models`` — a bundle that would
convert or download fails the check); classify ``resources/samples/chelsea.jpg`` (the top class must
be one of ImageNet's cats, 281–285); one Grad-CAM on it (:func:`engine.inspect.cam.compute_cam`); open
the main window on whatever platform ``QT_QPA_PLATFORM`` selects (offscreen, xcb, wayland), wait for
its first paint and for the status bar's "TensorFlow ready", close it.

Prints ONE JSON line (``"ok": true``, versions, timings in seconds, the prediction) and returns 0;
on a failure prints ``convscope --smoke: FAILED at <step>: ...`` to stderr, a JSON line with
``"ok": false`` and returns 1. The window keeps its settings in a temporary file, so a smoke run
never changes the user's own window geometry or recent folders.

``convscope --smoke --first-paint`` instead starts the window exactly as a normal launch does and
exits at its first paint, printing how long after the process started that was (read from
``/proc/self/stat``, so the PyInstaller bootloader and the Python start-up are included) and the
wall-clock time of the paint (for a caller that timed the launch itself).

``--save-window PNG`` saves a grab of the main window (after TensorFlow is ready) as a PNG.
Nothing here writes to ``sys.stdout`` when it is ``None`` (a windowed build).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

SAMPLE = "samples/chelsea.jpg"
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
WINDOW_TIMEOUT_MS = 60_000


class SmokeFailure(Exception):
    pass


def process_age_s() -> float | None:
    """Seconds since this process started (Linux: /proc; None elsewhere)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); fields here start at field 3
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def emit_line(payload: dict) -> None:
    text = json.dumps(payload, sort_keys=False) + "\n"
    stream = sys.stdout if sys.stdout is not None else sys.stderr
    if stream is not None:
        stream.write(text)
        stream.flush()


def complain(text: str) -> None:
    if sys.stderr is not None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def versions() -> dict[str, str]:
    from engine import __version__  # noqa: PLC0415

    found = {"python": platform.python_version(), "convscope": __version__,
             "frozen": bool(getattr(sys, "frozen", False))}
    for name in ("tensorflow", "keras", "PySide6"):
        module = sys.modules.get(name)
        found[name] = getattr(module, "__version__", "not loaded") if module else "not loaded"
    return found


def _temporary_settings(folder: str):
    from PySide6.QtCore import QSettings  # noqa: PLC0415

    from app.context import AppSettings  # noqa: PLC0415

    return AppSettings(QSettings(os.path.join(folder, "smoke.ini"), QSettings.Format.IniFormat))


def _wait(app, condition, timeout_ms: int) -> bool:
    from PySide6.QtCore import QEventLoop  # noqa: PLC0415

    deadline = time.perf_counter() + timeout_ms / 1000
    while not condition():
        if time.perf_counter() > deadline:
            return False
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    return True


# --------------------------------------------------------------------------------------------------
# steps


def step_tf() -> dict:
    from engine.tf_runtime import keras, tf  # noqa: PLC0415

    tf()
    keras()
    return {}


def step_model():
    from engine.bases import efficientnet_lite  # noqa: PLC0415
    from engine.models.loading import load_model  # noqa: PLC0415
    from engine.paths import resources_dir  # noqa: PLC0415

    found = efficientnet_lite.find_converted()
    bundled = found is not None and found[0].parent == resources_dir() / "models"
    if getattr(sys, "frozen", False) and not bundled:
        raise SmokeFailure(
            f"the bundle has no converted EfficientNet-Lite0 in {resources_dir() / 'models'} "
            "(it would convert or fail at first launch); rebuild it with scripts/build-binary")
    loaded = load_model("efficientnet-lite0")
    source = "bundled" if bundled else ("user cache" if found else "converted now")
    return loaded, {"weights": source}


def step_predict(loaded):
    from engine.paths import resources_dir  # noqa: PLC0415
    from engine.predict import predict_images  # noqa: PLC0415

    sample = resources_dir() / SAMPLE
    if not sample.is_file():
        raise SmokeFailure(f"the sample photo {sample} is missing; reinstall ConvScope")
    top = predict_images(loaded, [sample], top_k=3)[0].top
    if top[0][0] not in CAT_CLASSES:
        raise SmokeFailure(f"{sample.name} classified as {top[0][1]} ({top[0][2]:.2f}), not a cat: "
                           "the bundled weights are damaged")
    return sample, {"prediction": [{"index": i, "name": n, "probability": round(p, 4)} for i, n, p in top]}


def step_gradcam(loaded, sample, class_index: int) -> dict:
    import numpy as np  # noqa: PLC0415

    from engine.inspect.cam import compute_cam  # noqa: PLC0415
    from engine.predict import default_mode, load_input  # noqa: PLC0415

    image = load_input(sample, loaded.input_size or 224, default_mode(loaded))
    result = compute_cam(loaded.model, image, class_index=class_index)
    heatmap = np.asarray(result.heatmap)
    if heatmap.shape != image.shape[:2] or not np.isfinite(heatmap).all() or float(heatmap.max()) <= 0:
        raise SmokeFailure(f"Grad-CAM gave an unusable heatmap (shape {heatmap.shape}, "
                           f"max {float(np.nanmax(heatmap)) if heatmap.size else 'n/a'})")
    return {"gradcam_layer": result.layer}


def step_process() -> dict:
    """The GUI trains in a child process: check one starts and answers (frozen builds too)."""
    from engine.worker import run_in_child  # noqa: PLC0415

    answer = run_in_child("engine.worker:ping", timeout_s=120)
    if answer["pid"] == os.getpid():
        raise SmokeFailure("the job ran in this process, not in a child")
    return {"job_process": answer}


def step_window(save_window: str | None) -> dict:
    from app.context import AppContext  # noqa: PLC0415
    from app.launcher import create_application  # noqa: PLC0415
    from app.main_window import MainWindow  # noqa: PLC0415

    app = create_application()
    with tempfile.TemporaryDirectory(prefix="convscope-smoke-") as folder:
        context = AppContext(settings=_temporary_settings(folder))
        window = MainWindow(context)
        state = {"painted": False, "tf": False}
        window.first_painted.connect(lambda: state.__setitem__("painted", True))
        context.tf_ready.connect(lambda: state.__setitem__("tf", True))
        window.show()
        if not _wait(app, lambda: state["painted"], WINDOW_TIMEOUT_MS):
            raise SmokeFailure(f"the main window was not painted within {WINDOW_TIMEOUT_MS // 1000} s "
                               f"(Qt platform '{app.platformName()}')")
        if not _wait(app, lambda: state["tf"], WINDOW_TIMEOUT_MS):
            raise SmokeFailure("the window's TensorFlow loader did not report ready")
        app.processEvents()
        if save_window:
            from app.screenshot import save_grab  # noqa: PLC0415
            from engine.errors import ConvScopeError  # noqa: PLC0415

            try:
                save_grab(window, save_window)
            except (OSError, ConvScopeError) as error:  # e.g. a full disk
                raise SmokeFailure(f"could not save the window grab to {save_window}: {error}") from error
        info = {"qt_platform": app.platformName(), "tabs": window.tab_widget.count()}
        window.close()
        app.processEvents()
        window.deleteLater()
        app.processEvents()
    return info


def run_smoke(save_window: str | None = None) -> int:
    timings: dict[str, float] = {}
    details: dict = {}
    step = "tf import"
    total = time.perf_counter()
    try:
        start = time.perf_counter()
        step_tf()
        timings["tf_import"] = time.perf_counter() - start

        step, start = "model load", time.perf_counter()
        loaded, info = step_model()
        details.update(info)
        timings["model_load"] = time.perf_counter() - start

        step, start = "predict", time.perf_counter()
        sample, info = step_predict(loaded)
        details.update(info)
        timings["predict"] = time.perf_counter() - start

        step, start = "gradcam", time.perf_counter()
        details.update(step_gradcam(loaded, sample, details["prediction"][0]["index"]))
        timings["gradcam"] = time.perf_counter() - start

        step, start = "job process", time.perf_counter()
        details.update(step_process())
        timings["job_process"] = time.perf_counter() - start

        step, start = "window", time.perf_counter()
        details.update(step_window(save_window))
        timings["window"] = time.perf_counter() - start
    except Exception as error:  # noqa: BLE001 - the smoke's job is to report any failure clearly
        message = str(error) if isinstance(error, SmokeFailure) else f"{type(error).__name__}: {error}"
        complain(f"convscope --smoke: FAILED at {step}: {message}")
        emit_line({"ok": False, "failed_step": step, "error": message, "versions": versions(),
                   "timings_s": {k: round(v, 3) for k, v in timings.items()}})
        return 1
    timings["total"] = time.perf_counter() - total
    age = process_age_s()
    if age is not None:
        timings["process"] = age
    emit_line({"ok": True, "versions": versions(), "timings_s": {k: round(v, 3) for k, v in timings.items()},
               **details})
    return 0


def run_first_paint() -> int:
    """Start the window as ``convscope`` with no arguments does; exit at its first paint."""
    from PySide6.QtCore import QTimer  # noqa: PLC0415

    from app.launcher import create_application, setup_logging  # noqa: PLC0415

    setup_logging()
    app = create_application()
    from app.context import AppContext  # noqa: PLC0415
    from app.main_window import MainWindow  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="convscope-paint-") as folder:
        context = AppContext(settings=_temporary_settings(folder))
        # load_tf=False: TensorFlow starts loading only after the first paint anyway; leaving it
        # out lets the process exit at once instead of waiting for the import.
        window = MainWindow(context, load_tf=False)
        result: dict = {}

        def painted() -> None:
            if result:
                return
            result.update(first_paint_epoch=time.time(), first_paint_since_process_start_s=process_age_s())
            # not from inside paintEvent (which emits first_painted): close on the next loop turn
            QTimer.singleShot(0, window.close)
            QTimer.singleShot(0, app.quit)

        window.first_painted.connect(painted)
        window.show()
        QTimer.singleShot(WINDOW_TIMEOUT_MS, app.quit)
        app.exec()
    if not result:
        complain(f"convscope --smoke --first-paint: FAILED: no paint within {WINDOW_TIMEOUT_MS // 1000} s")
        emit_line({"ok": False, "failed_step": "first paint"})
        return 1
    emit_line({"ok": True, "qt_platform": app.platformName(), **result})
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convscope --smoke", description="Check this ConvScope install.")
    parser.add_argument("--first-paint", action="store_true",
                        help="open the window as a normal launch does, exit at its first paint")
    parser.add_argument("--save-window", metavar="PNG", help="save a grab of the main window")
    args = parser.parse_args(argv)
    if args.first_paint:
        return run_first_paint()
    return run_smoke(args.save_window)


if __name__ == "__main__":
    sys.exit(main())
