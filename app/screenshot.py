"""``convscope --screenshot DIR``: open the window (offscreen works), bring every tab into a
realistic state through the tabs' public methods, save one 1280×800 PNG per tab, exit 0.

The demo dataset ``resources/demo/pullover-vs-coat`` is scanned and a tiny run is trained on it
(feature extraction on EfficientNet-Lite0, 100 images per class); the bundled photo ``resources/samples/chelsea.jpg``
is explained with the ImageNet base in Activations, Filters and Grad-CAM. Runs and settings go to a
temporary folder, never to the user's own, and that folder is removed at exit.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("convscope.app")

SIZE = (1280, 800)
# Filters: block4a_expand_conv of EfficientNet-Lite0 gives the book's kind of patterns (stripes,
# dots, grids at several orientations); the stem and block2 layers give flat colours and fine noise,
# block3a (used before) mostly noise.
FILTER_LAYER = "block4a_expand_conv"
FILE_NAMES = {"Dataset": "dataset.png", "Training": "training.png", "Evaluation": "evaluation.png",
              "Activations": "activations.png", "Filters": "filters.png", "Grad-CAM": "gradcam.png",
              "Model": "model.png"}


def save_grab(widget, target: str | os.PathLike) -> Path:
    """Save ``widget.grab()`` as a PNG through a temp file renamed into place (engine.atomic), so an
    interrupted run never leaves a truncated screenshot; raise OSError when Qt cannot write it."""
    from engine.atomic import save_with  # noqa: PLC0415

    pixmap = widget.grab()

    def write(tmp: Path) -> None:
        if not pixmap.save(str(tmp), "PNG"):
            raise OSError(f"Qt could not write a PNG to {tmp}")

    save_with(target, write, suffix=".png")
    return Path(target)


def _fallback_dataset(folder: Path) -> Path:
    """Two classes of drawn shapes, when the demo dataset is not bundled."""
    import numpy as np  # noqa: PLC0415
    from PIL import Image, ImageDraw  # noqa: PLC0415

    rng = np.random.default_rng(0)
    for name in ("circle", "square"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(40):
            image = Image.new("RGB", (64, 64), tuple(int(v) for v in rng.integers(0, 90, 3)))
            draw = ImageDraw.Draw(image)
            r = rng.uniform(10, 20)
            cx, cy = rng.uniform(r, 64 - r, 2)
            box = [cx - r, cy - r, cx + r, cy + r]
            colour = tuple(int(v) for v in rng.integers(150, 256, 3))
            (draw.ellipse if name == "circle" else draw.rectangle)(box, fill=colour)
            image.save(folder / name / f"{name}_{i:03d}.png")
    return folder


class _Waiter:
    """Wait for a signal while the event loop runs (no fixed sleeps)."""

    def __init__(self, app) -> None:
        self.app = app

    def wait(self, signal, timeout_ms: int, start=None) -> bool:
        from PySide6.QtCore import QEventLoop, QTimer  # noqa: PLC0415

        loop = QEventLoop()
        fired = []

        def on_fire(*_args):
            fired.append(True)
            loop.quit()

        signal.connect(on_fire)
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        timer.start(timeout_ms)
        if start is not None:
            start()
        if not fired:
            loop.exec()
        try:
            signal.disconnect(on_fire)
        except (RuntimeError, TypeError):
            pass
        return bool(fired)

    def settle(self, rounds: int = 5) -> None:
        for _ in range(rounds):
            self.app.processEvents()


def take_screenshots(out_dir: str | os.PathLike) -> list[Path]:
    from app.launcher import create_application, setup_logging  # noqa: PLC0415

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    setup_logging()
    app = create_application()
    work = Path(tempfile.mkdtemp(prefix="convscope-screenshot-"))
    try:
        return _take(app, work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _take(app, work: Path, out: Path) -> list[Path]:
    from PySide6.QtCore import QSettings  # noqa: PLC0415

    from app.context import AppContext, AppSettings  # noqa: PLC0415
    from app.main_window import MainWindow  # noqa: PLC0415
    from engine.paths import resources_dir  # noqa: PLC0415

    settings = AppSettings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    settings.set_value("training/runs_root", str(work / "runs"))
    (work / "runs").mkdir()
    context = AppContext(settings)
    context.runner.show_dialogs = False
    context.runner.error_reported.connect(lambda name, message, details: log.error("%s: %s", name, message))
    window = MainWindow(context, load_tf=False)
    window.resize(*SIZE)
    window.show()
    waiter = _Waiter(app)
    waiter.settle()
    waiter.wait(context.tf_ready, 180_000, context.load_tf)

    # Dataset
    demo = resources_dir() / "demo" / "pullover-vs-coat"
    data = demo if demo.is_dir() else _fallback_dataset(work / "shapes")
    dataset = window.show_tab("Dataset")
    waiter.wait(dataset.done, 120_000, lambda: dataset.open_folder(str(data)))
    waiter.wait(dataset.preview.done, 60_000)

    # Training: a tiny run; the Evaluation tab evaluates it when it finishes
    training = window.show_tab("Training")
    training.form.strategy_combo.setCurrentIndex(training.form.strategy_combo.findData("features"))
    training.form.base_combo.setCurrentIndex(max(training.form.base_combo.findData("efficientnet-lite0"), 0))
    training.form.epochs_spin.setValue(8)
    training.form.batch_spin.setValue(16)
    training.form.size_spin.setValue(0)
    training.form.limit_spin.setValue(100)
    training.form.augment_check.setChecked(False)
    evaluation = window.tab("Evaluation")
    waiter.wait(training.done, 300_000, training.start)
    waiter.wait(evaluation.done, 120_000)
    if training.current_run:
        training.runs.set_run_checked(training.current_run, False)
    training.curves.flush()

    # Inspection tabs: the ImageNet base on the bundled photo
    photo = str(resources_dir() / "samples" / "chelsea.jpg")
    waiter.wait(context.model_changed, 180_000, lambda: context.open_model("efficientnet-lite0"))
    waiter.settle()
    activations = window.tab("Activations")
    waiter.wait(activations.done, 120_000, lambda: activations.show_image(photo))
    filters = window.tab("Filters")
    combo = getattr(filters, "layer_combo", None)
    if combo is not None:  # a mid-depth layer shows more telling patterns than the stem
        for i in range(combo.count()):
            if str(combo.itemData(i)).endswith(FILTER_LAYER):
                filters.select_layer(combo.itemData(i))
                break
    waiter.wait(filters.done, 240_000, filters.generate)
    if hasattr(filters, "show_pattern"):
        filters.show_pattern(2)  # one pattern enlarged in the side panel
    if hasattr(activations, "show_channel"):
        activations.show_channel(1)
    gradcam = window.tab("Grad-CAM")
    waiter.wait(gradcam.done, 120_000, lambda: gradcam.show_image(photo))
    waiter.wait(gradcam.trust_done, 300_000)  # the faithfulness panel: its own job, after the map
    waiter.settle()

    saved = []
    for title, name in FILE_NAMES.items():
        tab = window.show_tab(title)
        if tab is None:
            continue
        if title == "Evaluation":
            for path in evaluation.gallery_paths()[:40]:
                if not evaluation.gallery.cached(path):
                    waiter.wait(evaluation.gallery.thumbnail_loaded, 3_000)
        if title == "Dataset":
            paths = dataset.thumbnails.paths()[:30]
            for path in paths:
                if not dataset.thumbnails.cached(path):
                    waiter.wait(dataset.thumbnails.thumbnail_loaded, 3_000)
        waiter.settle(10)
        relayout = getattr(tab, "_relayout", None)
        if relayout is not None:  # grids laid out for the now visible view (their timer may not have fired)
            relayout()
            waiter.settle(5)
        target = out / name
        save_grab(window, target)
        saved.append(target)
    window.close()
    context.runner.cancel_all_and_wait(30_000)
    return saved


def main(out_dir: str) -> int:
    try:
        saved = take_screenshots(out_dir)
    except Exception:  # noqa: BLE001 - report and exit non-zero
        log.exception("screenshot mode failed")
        return 1
    if sys.stderr is not None:
        for path in saved:
            sys.stderr.write(f"saved {path}\n")
    return 0 if len(saved) == len(FILE_NAMES) else 1
