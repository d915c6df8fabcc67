"""What a new user tripped over (issue 14), each checked through the real widgets."""

from __future__ import annotations

import pytest

from imagegen import write_square_photo

pytestmark = pytest.mark.gui


def test_image_size_default_says_what_it_is(open_tab):
    """Point 8: "Image size: default" names the size the strategy and model will use."""
    from app.tabs.training import TrainingTab

    tab = open_tab(TrainingTab)
    form = tab.form
    form.strategy_combo.setCurrentIndex(form.strategy_combo.findData("scratch"))
    form.size_spin.setValue(0)
    assert form.size_spin.text() == "default (150 px)"  # book-scratch's own size
    form.strategy_combo.setCurrentIndex(form.strategy_combo.findData("features"))
    form.base_combo.setCurrentIndex(form.base_combo.findData("vgg16-edges"))
    assert form.size_spin.text() == "default (150 px)"
    form.base_combo.setCurrentIndex(form.base_combo.findData("efficientnet-lite0"))
    assert form.size_spin.text() == "default (224 px)"


def test_dataset_preview_preset_carries_to_training(open_tab, context):
    """Point 8: the augmentation preset previewed on the Dataset tab is the one training starts with."""
    from app.tabs.dataset import DatasetTab
    from app.tabs.training import TrainingTab

    dataset, training = open_tab(DatasetTab), open_tab(TrainingTab)
    preview = dataset.preview.preset_combo
    preview.setCurrentIndex(preview.findText("mild"))
    assert training.form.augmentation_combo.currentData() == "mild"
    preview.setCurrentIndex(preview.findText("book"))
    assert training.form.augmentation_combo.currentData() == "book"
    preview.setCurrentIndex(preview.findText("mild"))
    later = open_tab(TrainingTab)  # a later window
    assert later.form.augmentation_combo.currentData() == "mild"


def test_bases_without_weights_are_listed_but_cannot_be_chosen(open_tab, context):
    """Point 9: a random-init base is useless for feature extraction: shown, disabled, with the reason."""
    from app.tabs.training import TrainingTab
    from engine.bases.registry import all_bases

    missing = [spec.name for spec in all_bases() if not spec.weights_status().present]
    if not missing:
        pytest.skip("every base has its weights here")
    context.settings.set_value("training/base", missing[0])  # e.g. chosen in an older version
    tab = open_tab(TrainingTab)
    form = tab.form
    model = form.base_combo.model()
    for index in range(form.base_combo.count()):
        name = form.base_combo.itemData(index)
        assert model.item(index).isEnabled() == (name not in missing), name
    index = form.base_combo.findData(missing[0])
    assert "no weights" in form.base_combo.itemText(index)
    assert "need the pretrained weights" in form.base_combo.itemData(index, 3)  # the tooltip says why
    assert form.base_combo.currentData() not in missing  # a usable base is chosen instead


def _three_classes():
    """The tests' three-class run model (ant, bee, cat) at 32 px."""
    from models import convnet, loaded

    return loaded(convnet("three", (6, 8), 3, head="probs"), ["ant", "bee", "cat"], kind="run", input_size=32)


def _explain(window, qtbot, tmp_path, class_text: str):
    """The Grad-CAM tab in front, the three-class model loaded, the photo explained for ``class_text``
    typed in the class field."""
    gradcam = window.show_tab("Grad-CAM")
    window.context.set_model(_three_classes())
    with qtbot.waitSignal(gradcam.done, timeout=60_000):
        gradcam.show_image(write_square_photo(tmp_path))
    gradcam.class_edit.setText(class_text)
    with qtbot.waitSignal(gradcam.done, timeout=60_000):
        gradcam.run_button.click()
    return gradcam


def test_a_model_loaded_elsewhere_does_not_rerun_the_hidden_gradcam_tab(tf_context, window, qtbot, tmp_path, errors):
    """Bug 1: after explaining a class by name, loading a model with other classes on another tab
    starts nothing in the hidden Grad-CAM tab (no error, no dialog); the class field is reset and the
    tab explains again, for the new model's predicted class, when it is shown."""
    from models import book_nested, loaded

    context = tf_context
    gradcam = _explain(window, qtbot, tmp_path, "bee")
    assert gradcam.last_error == "" and gradcam.result.class_index == 1
    window.show_tab("Model")
    started = []
    context.runner.job_started.connect(lambda handle: started.append(handle.group))
    context.set_model(loaded(book_nested(), ["cats", "dogs"], kind="run", input_size=32))
    qtbot.wait(50)
    assert "Grad-CAM" not in started  # nothing ran behind the user's back
    assert gradcam.class_edit.text() == "" and gradcam.last_error == "" and errors == []
    with qtbot.waitSignal(gradcam.done, timeout=60_000):
        window.show_tab("Grad-CAM")
    assert gradcam.last_error == "" and errors == []
    assert gradcam.result.class_index == gradcam.top[0][0]  # the new model's own prediction


def test_routine_input_errors_show_in_the_tab_not_in_a_dialog(tf_context, window, qtbot, tmp_path, errors):
    """Point 11: an unknown class is shown beside the fields (the field marked), no dialog; a later
    success clears it, and the status bar keeps no stale error."""
    gradcam = _explain(window, qtbot, tmp_path, "pickup")
    assert "pickup" in gradcam.status.text() and "pickup" in gradcam.class_edit.toolTip()
    assert "c0392b" in gradcam.class_edit.styleSheet()
    assert errors == [] and tf_context.runner._last_box is None  # no dialog, nothing for the status bar
    window.statusBar().showMessage("⚠ Training: an earlier failure", 10_000)
    gradcam.class_edit.setText("cat")
    with qtbot.waitSignal(gradcam.done, timeout=60_000):
        gradcam.run()
    assert "pickup" not in gradcam.status.text() and gradcam.class_edit.styleSheet() == ""
    assert window.statusBar().currentMessage() == ""  # a success clears an old error


def test_training_progress_names_the_phase_and_guesses_no_time_left_too_early(context, qtbot, monkeypatch):
    """Bug 2: while scanning and building the base the bar says so (not "100 %"), epochs say
    "epoch k of n", and "time left" appears only once it can be estimated."""
    import threading

    import app.job_handle
    from app.widgets.job_progress import JobProgress
    from engine.events import BatchProgress, Progress, RunStarted, Status

    monkeypatch.setattr(app.job_handle, "ETA_AFTER_S", 0.3)
    steps = [[Status("scanning /data/flowers")], [Progress(10, 10, "scanning")],
             [Status("building base EfficientNet-Lite0 at 224 px")], [RunStarted("/runs/r", "features", 2)],
             [BatchProgress(1, 1, 20, {"loss": 0.7})], [BatchProgress(1, 2, 20, {"loss": 0.7})], []]
    go = [threading.Event() for _ in steps]

    def job(emit, cancel):
        for events, event_go in zip(steps, go):
            event_go.wait(10)
            for event in events:
                emit(event)
        return None

    widget = JobProgress(context.runner, "training")
    qtbot.addWidget(widget)
    context.runner.start("Training", job, group="training")
    seen = []
    for index, event_go in enumerate(go[:-1]):
        if index >= 4:  # batch events closer than 50 ms are handed over with the next one
            qtbot.wait(80 if index == 4 else 350)  # then: the phase has run long enough for an estimate
        with qtbot.waitSignal(widget.handle.progress, timeout=5_000):
            event_go.set()
        seen.append((widget.bar.format(), widget.bar.maximum(), widget.label.text()))
    assert seen[0][:2] == ("Training: scanning /data/flowers", 0)  # busy, no percentage
    assert seen[1][0] == "Training — scanning: %p%" and seen[1][1] == 10
    assert seen[2][1] == 0 and "building base" in seen[2][0] and seen[2][2] == ""  # not "100 %"
    assert seen[3][1] == 0 and "starting" in seen[3][0]
    assert seen[4][0] == "Training — epoch 1 of 2: %p%" and seen[4][2] == ""  # 2.5 %, no guess yet
    assert seen[5][2].endswith("left"), seen
    go[-1].set()


def _answer_question(qtbot, button):
    """Click ``button`` ("Yes"/"No") of the question box as soon as it is up."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    def click():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        clicked.append(box.text())
        box.button(getattr(QMessageBox.StandardButton, button)).click()

    clicked = []
    QTimer.singleShot(20, click)
    return clicked


@pytest.mark.parametrize("answer", ["No", "Yes"])
def test_closing_while_training_asks_then_goes_at_once(window, qtbot, answer):
    """Bug 3: closing during training asks first; No keeps everything running; Yes closes the
    window at once and the job winds down behind it (cancelled cleanly, not killed)."""
    import threading
    import time

    wound_down = threading.Event()

    def job(emit, cancel):
        while not cancel.cancelled:
            time.sleep(0.005)
        time.sleep(0.5)  # saving last.keras
        wound_down.set()

    window.show_tab("Training")
    handle = window.context.runner.start("Training", job, group="training")
    handle.close_question = "Training is running — stop it and keep last.keras?"
    asked = _answer_question(qtbot, answer)
    t0 = time.monotonic()
    window.close()
    assert asked == ["Training is running — stop it and keep last.keras?"]
    if answer == "No":
        assert window.isVisible() and handle.running and not handle.token.cancelled
        handle.cancel()
        qtbot.waitUntil(lambda: not handle.running)
        return
    assert time.monotonic() - t0 < 1.0 and not window.isVisible()  # not 6.8 s on "Stopping…"
    assert handle.token.cancelled and not wound_down.is_set()
    qtbot.waitUntil(wound_down.is_set, timeout=5_000)
    qtbot.waitUntil(lambda: not window.context.runner.busy)
    assert handle.outcome == "cancelled"


def test_training_tab_shows_one_progress_bar_and_one_cancel(window, qtbot):
    """Point 12: on the Training tab while it trains: the tab's bar (no Cancel of its own) and the
    form's Cancel; the status bar's bar steps aside, and comes back on another tab."""
    import time

    from PySide6.QtWidgets import QProgressBar, QPushButton

    def job(emit, cancel):
        while not cancel.cancelled:
            time.sleep(0.005)

    training = window.show_tab("Training")
    handle = window.context.runner.start("Training", job, group="training")
    qtbot.wait(20)
    visible = [w for w in window.findChildren(QProgressBar) if w.isVisible()]
    cancels = [b for b in window.findChildren(QPushButton) if b.text() == "Cancel" and b.isVisible()]
    assert visible == [training.progress.bar] and cancels == [training.form.cancel_button]
    window.show_tab("Dataset")
    assert window.status_progress.isVisible() and window.status_progress.handle is handle
    handle.cancel()
    qtbot.waitUntil(lambda: not handle.running)


def test_small_probabilities_are_readable_and_the_two_answers_are_explained(tf_context, window, qtbot, tmp_path):
    """Points 4 and 6: a barely predicted class is not "0.0 %" and gets a word of warning; an ImageNet
    model's second number is explained in plain words. Point 5: a 2×2 map says it is coarse and
    names an earlier layer."""
    from app.tabs.gradcam_text import format_probability
    from models import convnet, loaded

    assert [format_probability(p) for p in (0.128, 0.004, 7e-5, 1e-9)] == ["12.8%", "0.4%", "0.007 %", "< 0.0001 %"]
    from types import SimpleNamespace

    import numpy as np
    from PySide6.QtGui import QTextDocument

    from app.tabs.gradcam_text import explanation_lines

    tiny = SimpleNamespace(cam=SimpleNamespace(class_index=0, score=1e-9, layer="conv"), class_name="coat",
                           shown=np.zeros((28, 28, 3)), whole_photo=True, input_text="the photo", crop_top=None)
    shown = QTextDocument()
    shown.setHtml("<br>".join(explanation_lines(tiny, "Score-CAM")))  # as the panel's rich text shows it
    assert "probability < 0.0001 %" in shown.toPlainText()  # not swallowed as a tag (seen in the walk)
    gradcam = window.show_tab("Grad-CAM")
    # 64 px in, three 3×3 convs with pooling: the last map is 2×2 (the new user's 64-px model)
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Rescaling(1 / 255.0)]
                             + [layer for i in range(4) for layer in (
                                 keras.layers.Conv2D(4, 3, padding="same", activation="relu", name=f"conv{i}"),
                                 keras.layers.MaxPooling2D(2 if i < 3 else 4, name=f"pool{i}"))]
                             + [keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_last"),
                                keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")],
                             name="tiny64")
    tf_context.set_model(loaded(model, ["ant", "bee", "cat"], kind="run", input_size=64))
    with qtbot.waitSignal(gradcam.done, timeout=60_000):
        gradcam.show_image(write_square_photo(tmp_path))
    text = gradcam.info.text()
    assert "sees the image as 2×2 cells" in text and "earlier layer, e.g. conv3" in text  # 8×8: the deepest with detail
    imagenet = loaded(convnet("fcn", (6,), 4, seed=4, head="probs"), ["a", "b", "c", "d"], kind="imagenet",
                      input_size=32, source="fcn")
    tf_context.set_model(imagenet)
    wide = tmp_path / "wide.png"
    from PIL import Image
    import numpy as np

    Image.fromarray(np.full((40, 80, 3), 90, np.uint8)).save(wide)
    with qtbot.waitSignal(gradcam.done, timeout=60_000):
        gradcam.show_image(str(wide))
    assert "square in the middle of the photo" in gradcam.info.text()
    assert "ImageNet protocol" not in gradcam.info.text()
    assert all("0.0%" not in gradcam.top_list.item(i).text() for i in range(gradcam.top_list.count()))


def test_saved_overlay_is_named_after_image_method_and_class_and_carries_a_caption(tf_context, window, qtbot,
                                                                                    tmp_path):
    """Point 13: <image>_<method>_<class>.png, and a caption strip (model, class, probability,
    method, layer) below the overlay."""
    import numpy as np
    from PIL import Image

    window.show_tab("Grad-CAM").set_method("scorecam")
    gradcam = _explain(window, qtbot, tmp_path, "bee")
    assert gradcam.suggested_file_name() == "square_scorecam_bee.png"
    plain, captioned = tmp_path / "plain.png", tmp_path / "captioned.png"
    gradcam.save_overlay(str(plain))  # the tick box is off by default
    gradcam.caption_box.setChecked(True)
    gradcam.save_overlay(str(captioned))
    plain_px, captioned_px = np.asarray(Image.open(plain)), np.asarray(Image.open(captioned))
    assert captioned_px.shape[1] >= max(plain_px.shape[1], 400)  # wide enough for the words
    assert captioned_px.shape[0] > plain_px.shape[0] + 20
    assert np.array_equal(captioned_px[: plain_px.shape[0], : plain_px.shape[1]], plain_px)  # overlay untouched
    strip = captioned_px[plain_px.shape[0]:]
    assert (strip < 100).any() and "bee" in gradcam.caption_text() and "Score-CAM" in gradcam.caption_text()


def test_demo_dataset_from_the_file_menu_and_dialogs_remember_their_folder(tf_context, window, qtbot, tmp_path,
                                                                           monkeypatch):
    """Point 10: File → Open the demo dataset scans the bundled images; the image dialog opens where
    the last image came from (per kind), not in the home folder; an image opened on one tab is
    offered on the others."""
    import app.widgets.model_source as model_source

    dataset = window.tab("Dataset")
    with qtbot.waitSignal(dataset.done, timeout=60_000):
        window.open_demo_action.trigger()
    assert dataset.model.scan is not None and dataset.model.scan.num_images > 0
    assert "pullover-vs-coat" in dataset.model.folder

    photos = tmp_path / "photos"
    photos.mkdir()
    first, second = write_square_photo(photos), str(photos / "second.png")
    starts = []

    def fake_dialog(parent, title, start, filters):
        starts.append(start)
        return (first if len(starts) == 1 else second), filters

    monkeypatch.setattr(model_source.QFileDialog, "getOpenFileName", fake_dialog)
    activations, gradcam = window.tab("Activations"), window.tab("Grad-CAM")
    gradcam.image_picker.browse_button.click()
    activations.image_picker.browse_button.click()
    assert starts[0] != str(photos) and starts[1] == str(photos)  # the second dialog opens in photos/
    assert activations.image_picker.combo.findData(first) >= 0  # Grad-CAM's image offered here too


def test_a_run_that_does_not_learn_says_so(open_tab, qtbot, context):
    """Point 7: loss 0.693 and validation accuracy 0.5 for several epochs → a hint with what to try;
    a run that learns gets none."""
    from app.tabs.training import TrainingTab
    from engine.events import EpochEnded, RunStarted

    def run_of(losses, accuracy):
        def job(emit, cancel):
            emit(RunStarted("/runs/r", "scratch", len(losses)))
            for epoch, loss in enumerate(losses, start=1):
                emit(EpochEnded(epoch, len(losses), {"loss": loss, "val_accuracy": accuracy}, 1.0))
        return job

    tab = open_tab(TrainingTab)
    with qtbot.waitSignal(tab.done, timeout=10_000):
        tab._start_job("Training", run_of([0.6932, 0.6931, 0.6931, 0.6930], 0.5))
    hints = [tab.warnings_list.item(i).text() for i in range(tab.warnings_list.count())]
    assert len(hints) == 1 and "not learning" in hints[0] and "learning rate" in hints[0]
    with qtbot.waitSignal(tab.done, timeout=10_000):
        tab._start_job("Training", run_of([0.69, 0.55, 0.41, 0.33], 0.8))
    assert tab.warnings_list.count() == 0


def test_first_screen_leads_with_a_plain_sentence(open_tab, qtbot):
    """Point 12: the augmentation preset's description opens with one plain sentence; the details
    (ImageDataGenerator's units) are behind "more"."""
    from app.tabs.dataset import DatasetTab

    tab = open_tab(DatasetTab)
    combo, label = tab.preview.preset_combo, tab.preview.description
    combo.setCurrentIndex(combo.findText("book"))
    assert "ImageDataGenerator" not in label.text() and "more…" in label.text()
    label.linkActivated.emit("more")
    assert "ImageDataGenerator" in label.text()
    label.linkActivated.emit("less")
    assert "ImageDataGenerator" not in label.text()


def test_training_tab_says_a_warning_once_and_ticks_whole_epochs(open_tab, qtbot):
    """Point 12: the empty-class warning once, not twice; no "0.5" or "1.5" epochs on the axes."""
    from app.tabs.training import TrainingTab
    from engine.events import Warning_

    def job(emit, cancel):
        emit(Warning_("class folder 'shirt' has no usable image; it is left out"))  # from the scan
        emit(Warning_("class folder 'shirt' has no usable image; it is left out"))  # and the split

    tab = open_tab(TrainingTab)
    with qtbot.waitSignal(tab.done, timeout=10_000):
        tab._start_job("Training", job)
    assert tab.warnings_list.count() == 1
    for plot in tab.curves.plots.values():
        ticks = [v for _, values in plot.getAxis("bottom").tickValues(0.0, 3.0, 400) for v in values]
        assert ticks and all(float(v).is_integer() for v in ticks)
