"""The new user's walk (issue 14), driven step by step through the window, with a screenshot of the
whole X screen (window manager decorations and dialogs included) after each step.

Run under a real X server with a window manager, e.g.::

    Xvfb :99 -screen 0 1400x900x24 & DISPLAY=:99 openbox &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb PYTHONPATH=. .venv/bin/python scripts/walk.py docs/screenshots/walk

The dataset is a copy of 40 images per class of the bundled demo, plus five broken files and an
empty class folder; runs and settings go to a temporary folder.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def make_dataset(folder: Path) -> Path:
    from imagegen import BAD_FILE_WRITERS

    demo = ROOT / "resources" / "demo" / "pullover-vs-coat" / "train"
    for name in ("coat", "pullover"):
        (folder / name).mkdir(parents=True)
        for path in sorted((demo / name).glob("*.png"))[:40]:
            shutil.copy(path, folder / name / path.name)
    for key in ("truncated-jpeg", "zero-bytes", "text-named-jpg", "corrupt-png-data", "heic"):
        BAD_FILE_WRITERS[key][0](folder / "coat")
    (folder / "shirt").mkdir()  # an empty class folder
    return folder


def main(out_dir: str) -> int:
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.context import AppContext, AppSettings
    from app.launcher import create_application
    from app.main_window import MainWindow

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    app = create_application()
    work = Path(tempfile.mkdtemp(prefix="convscope-walk-"))
    data = make_dataset(work / "clothes")
    settings = AppSettings(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    settings.set_value("training/runs_root", str(work / "runs"))
    context = AppContext(settings)
    window = MainWindow(context)
    window.resize(1280, 800)
    window.show()
    shots: list[Path] = []

    def wait(signal=None, ms: int = 300_000, start=None) -> None:
        loop = QEventLoop()
        if signal is not None:
            signal.connect(loop.quit)
        QTimer.singleShot(ms, loop.quit)
        if start is not None:
            QTimer.singleShot(0, start)
        loop.exec()

    def settle(ms: int = 400) -> None:
        wait(None, ms)

    def shot(name: str) -> None:
        settle()
        target = out / f"{len(shots) + 1:02d}_{name}.png"
        app.primaryScreen().grabWindow(0).save(str(target), "PNG")
        shots.append(target)
        print("saved", target, flush=True)

    wait(window.first_painted, 20_000)
    shot("launch")
    wait(context.tf_ready, 180_000)
    dataset = window.show_tab("Dataset")
    wait(dataset.done, 120_000, lambda: dataset.open_folder(str(data)))
    shot("dataset_with_broken_files")

    training = window.show_tab("Training")
    form = training.form
    form.strategy_combo.setCurrentIndex(form.strategy_combo.findData("scratch"))
    form.epochs_spin.setValue(2)
    form.batch_spin.setValue(16)
    form.size_spin.setValue(64)
    form.lr_edit.setText("")
    training.start()
    settle(2500)
    shot("training_from_scratch_running")
    wait(training.done, 600_000)
    shot("training_from_scratch_done")

    form.strategy_combo.setCurrentIndex(form.strategy_combo.findData("features"))
    form.base_combo.setCurrentIndex(form.base_combo.findData("efficientnet-lite0"))
    form.epochs_spin.setValue(2)
    form.size_spin.setValue(0)
    form.base_combo.showPopup()
    shot("bases_without_weights_disabled")
    form.base_combo.hidePopup()
    evaluation = window.tab("Evaluation")
    wait(training.done, 900_000, training.start)
    shot("training_pretrained_done")
    window.show_tab("Evaluation")
    wait(evaluation.done, 600_000)  # the finished run is evaluated on its own
    shot("evaluation")
    matrix = evaluation.model.metrics.get("confusion_matrix") or [[1]]
    row, column = max(((i, j) for i in range(len(matrix)) for j in range(len(matrix))),
                      key=lambda ij: matrix[ij[0]][ij[1]])
    evaluation.confusion_table.cellClicked.emit(row, column)
    settle(1500)
    gradcam = window.tab("Grad-CAM")
    evaluation.gallery_view.setCurrentIndex(evaluation.gallery.index(0, 0))
    wait(gradcam.done, 300_000, evaluation.cam_button.click)
    shot("confusion_cell_to_gradcam")
    other = next((gradcam.top_list.item(i) for i in range(gradcam.top_list.count())
                  if not gradcam.top_list.item(i).isSelected()), None)
    if other is not None:
        wait(gradcam.done, 300_000, lambda: gradcam._on_top_clicked(other))
        shot("gradcam_other_class")
    gradcam.set_method("scorecam")
    wait(gradcam.done, 300_000, gradcam.run)
    shot("gradcam_scorecam")
    gradcam.caption_box.setChecked(True)
    saved = work / gradcam.suggested_file_name()
    gradcam.save_overlay(str(saved))
    if saved.exists():
        shots.append(out / f"{len(shots) + 1:02d}_saved_overlay_{saved.name}")
        shutil.copy(saved, shots[-1])
        print("saved overlay", saved.name, flush=True)

    activations = window.show_tab("Activations")
    wait(activations.done, 300_000, lambda: activations.show_image(gradcam._image_path))
    shot("activations")
    filters = window.show_tab("Filters")
    filters.count_spin.setValue(4)
    filters.steps_spin.setValue(15)
    wait(filters.done, 300_000, filters.generate)
    shot("filters")
    window.show_tab("Model")
    shot("model_graph")

    training = window.show_tab("Training")
    form.strategy_combo.setCurrentIndex(form.strategy_combo.findData("scratch"))
    form.size_spin.setValue(64)
    form.epochs_spin.setValue(20)
    training.start()
    settle(6000)
    wait(training.done, 120_000, form.cancel_button.click)
    shot("cancelled_resumable")

    training = window.show_tab("Training")
    form.epochs_spin.setValue(20)
    training.start()
    settle(5000)

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            shot("close_while_training_question")
            box.button(QMessageBox.StandardButton.Yes).click()
        else:
            QTimer.singleShot(100, answer)

    QTimer.singleShot(300, answer)
    window.close()
    settle(300)
    shot("closed_at_once")
    wait(context.runner.wound_down, 60_000)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots/walk"))
