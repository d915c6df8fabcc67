"""What a new user tripped over (issue 14), each checked through the real widgets."""

from __future__ import annotations

import pytest

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


def _photo(tmp_path):
    import numpy as np
    from PIL import Image

    pixels = np.full((36, 44, 3), 30, np.uint8)
    pixels[8:28, 10:30] = (240, 220, 40)
    path = tmp_path / "square.png"
    Image.fromarray(pixels).save(path)
    return str(path)


def test_a_model_loaded_elsewhere_does_not_rerun_the_hidden_gradcam_tab(tf_context, window, qtbot, tmp_path, errors):
    """Bug 1: after explaining a class by name, loading a model with other classes on another tab
    starts nothing in the hidden Grad-CAM tab (no error, no dialog); the class field is reset and the
    tab explains again, for the new model's predicted class, when it is shown."""
    from models import book_nested, convnet, loaded

    context = tf_context
    gradcam = window.show_tab("Grad-CAM")
    context.set_model(loaded(convnet("three", (6, 8), 3, head="probs"), ["ant", "bee", "cat"], kind="run",
                             input_size=32))
    with qtbot.waitSignal(gradcam.done, timeout=60_000):
        gradcam.show_image(_photo(tmp_path))
    gradcam.class_edit.setText("bee")
    with qtbot.waitSignal(gradcam.done, timeout=60_000):
        gradcam.run_button.click()
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
    from models import convnet, loaded

    gradcam = window.show_tab("Grad-CAM")
    tf_context.set_model(loaded(convnet("three", (6, 8), 3, head="probs"), ["ant", "bee", "cat"], kind="run",
                                input_size=32))
    with qtbot.waitSignal(gradcam.done, timeout=60_000):
        gradcam.show_image(_photo(tmp_path))
    gradcam.class_edit.setText("pickup")
    with qtbot.waitSignal(gradcam.done, timeout=60_000):
        gradcam.run_button.click()
    assert "pickup" in gradcam.status.text() and "pickup" in gradcam.class_edit.toolTip()
    assert "c0392b" in gradcam.class_edit.styleSheet()
    assert errors == [] and tf_context.runner._last_box is None  # no dialog, nothing for the status bar
    window.statusBar().showMessage("⚠ Training: an earlier failure", 10_000)
    gradcam.class_edit.setText("cat")
    with qtbot.waitSignal(gradcam.done, timeout=60_000):
        gradcam.run()
    assert "pickup" not in gradcam.status.text() and gradcam.class_edit.styleSheet() == ""
    assert window.statusBar().currentMessage() == ""  # a success clears an old error
