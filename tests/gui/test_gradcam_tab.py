"""Grad-CAM tab driven like a user: overlay + opacity, classes of a sigmoid head, methods, errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import models
from app.tabs.gradcam import GradCamTab
from models import book_nested, convnet

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("tf_context")]  # these tabs need TensorFlow


def _run(model, names):
    """``model`` as a ConvScope run of 32 px with these class names."""
    return models.loaded(model, names, kind="run", input_size=32, source=f"/runs/{model.name}")


def _three_way():
    return convnet("three_way", (6, 8), 3, seed=1, head="probs")


def _imagenet_like():
    """A tiny fully convolutional 32 px model labelled as an ImageNet model (centre-crop protocol)."""
    return models.loaded(convnet("fcn", (6,), 4, seed=4, head="probs"), ["a", "b", "c", "d"], kind="imagenet",
                         input_size=32, source="fcn")


def test_overlay_is_shown_and_opacity_reblends_without_recomputing(qtbot, context, image_path, tmp_path, open_tab):
    tab = open_tab(GradCamTab)
    context.set_model(_run(_three_way(), ["ant", "bee", "cat"]))
    assert tab.layer_combo.itemText(0) == "default: conv_b"
    with qtbot.waitSignals([tab.done, tab.trust_done], timeout=120_000):  # the map, then its scores
        tab.show_image(image_path)
    assert tab.last_error == ""
    assert tab.top_list.count() == 3  # top-k capped at the 3 classes
    assert tab.top[0][1] in ("ant", "bee", "cat")
    assert tab.result.class_index == tab.top[0][0]  # the predicted class by default
    # the panel's probability is the listed one: both come from the same input
    assert tab.result.score == pytest.approx(tab.top[0][2], abs=1e-5)
    assert f"{tab.top[0][2]:.1%}" in tab.info.text() and "32×32" in tab.info.text()
    assert f"{tab.top[0][2]:.1%}" in tab.top_list.item(0).text()
    before = tab.overlay_image().copy()
    assert before.shape == (36, 44, 3)  # at the image's own size
    assert tab.original_view.image().shape == (36, 44, 3)
    jobs_before = len(context.runner._jobs)
    tab.opacity.setValue(90)
    after = tab.overlay_image()
    assert not np.array_equal(before, after)
    assert not context.runner.busy and len(context.runner._jobs) == jobs_before  # no job: re-blended

    # any class by name, another method and layer
    tab.class_edit.setText("BEE")
    tab.set_method("gradcam++")
    assert tab.select_layer("conv_a")
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.run_button.click()
    assert tab.result.class_index == 1 and tab.result.layer == "conv_a" and tab.result.method == "gradcam++"

    out = tmp_path / "overlay.png"
    tab.save_overlay(str(out))
    assert np.asarray(Image.open(out)).shape == (36, 44, 3)


def test_book_shape_sigmoid_head_both_classes(qtbot, context, image_path, open_tab):
    tab = open_tab(GradCamTab)
    context.set_model(_run(book_nested(rescale=True), ["cats", "dogs"]))
    assert tab.layer_combo.itemText(0) == "default: tiny_base/block2_conv"
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.show_image(image_path, class_index=0)
    assert tab.last_error == ""
    assert sorted(name for _, name, _ in tab.top) == ["cats", "dogs"]  # both classes listed
    assert abs(sum(p for _, _, p in tab.top) - 1.0) < 1e-5
    assert tab.result.class_index == 0
    dog_item = next(tab.top_list.item(i) for i in range(tab.top_list.count())
                    if tab.top_list.item(i).text().startswith("dogs"))
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab._on_top_clicked(dog_item)  # what a click on "dogs" does
    assert tab.result.class_index == 1
    assert tab.result.layer == "tiny_base/block2_conv"
    assert tab.overlay_image() is not None


def test_model_tab_selection_reaches_the_gradcam_tab(qtbot, context, open_tab):
    from app.tabs.activations import ActivationsTab
    from app.tabs.filters import FiltersTab
    from app.tabs.model_graph import ModelTab

    gradcam = open_tab(GradCamTab)
    model_tab, activations, filters = ModelTab(context), ActivationsTab(context), FiltersTab(context)
    for widget in (model_tab, activations, filters):
        qtbot.addWidget(widget)
    context.set_model(_run(book_nested(rescale=True), ["cats", "dogs"]))
    assert model_tab.select_layer("tiny_base/block1_conv")
    assert gradcam.layer_combo.currentData() == "tiny_base/block1_conv"
    assert activations.current_layer == "tiny_base/block1_conv"
    assert filters.layer_combo.currentData() == "tiny_base/block1_conv"


def test_model_without_conv_layers_shows_the_engine_message_and_stays_usable(qtbot, context, image_path, open_tab,
                                                                           errors):
    import keras

    dense_only = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                                   keras.layers.Dense(2, activation="softmax", name="probs")], name="dense_only")
    tab = open_tab(GradCamTab)
    context.set_model(_run(dense_only, ["a", "b"]))
    assert "no convolution layer" in tab.status.text()
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.show_image(image_path)
    assert "no convolution layer" in tab.last_error and errors == []  # in the tab, not a dialog
    qtbot.waitUntil(lambda: tab.run_button.isEnabled())
    # still usable: saliency needs no conv layer
    tab.set_method("saliency")
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.run()
    assert tab.result is not None and tab.result.layer == "input"
    assert tab.overlay_image().shape == (36, 44, 3)


def _wide_photo(tmp_path):
    pixels = np.full((40, 80, 3), 20, np.uint8)
    pixels[5:35, 50:75] = (250, 250, 250)  # off centre: outside the centre crop
    path = tmp_path / "wide.png"
    Image.fromarray(pixels).save(path)
    return path


def test_imagenet_model_explains_the_whole_photo_at_its_aspect_and_agrees_with_the_list(qtbot, context, tmp_path, open_tab):
    """An ImageNet (fully convolutional) model: the prediction list and the map come from the whole
    photo with its aspect kept (shorter side = input size), so the numbers agree and the heatmap
    covers the whole photo; the ImageNet protocol's centre-crop answer is shown beside it."""
    loaded, path = _imagenet_like(), _wide_photo(tmp_path)
    tab = open_tab(GradCamTab)
    context.set_model(loaded)
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.show_image(str(path))
    assert tab.last_error == ""
    assert "64×32" in tab.input_text  # 80×40 → shorter side 32, aspect kept
    assert tab.result.heatmap.shape == (32, 64)
    listed = {index: prob for index, _, prob in tab.top}
    assert tab.result.score == pytest.approx(listed[tab.result.class_index], abs=1e-5)
    assert "centre crop" in tab.info.text()
    assert tab.overlay_image().shape == (40, 80, 3)


def test_input_as_convscope_predict_explains_the_centre_crop_with_predict_s_numbers(qtbot, context, tmp_path, open_tab):
    """"As convscope predict": the list and the map come from the exact array ``convscope predict``
    classifies (the centre crop for an ImageNet model), and the overlay is drawn over that crop."""
    from engine.predict import predict_images

    loaded, path = _imagenet_like(), _wide_photo(tmp_path)
    tab = open_tab(GradCamTab)
    context.set_model(loaded)
    tab.input_combo.setCurrentIndex(tab.input_combo.findData("predict"))
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.show_image(str(path))
    assert tab.last_error == ""
    assert "32×32 centre crop" in tab.input_text
    assert tab.result.heatmap.shape == (32, 32)
    assert tab.overlay_image().shape == (32, 32, 3)
    assert "ImageNet protocol" not in tab.info.text()  # nothing to compare: this is the protocol's input
    assert "model's input" in tab.original_label.text()
    (predicted,) = predict_images(loaded, [str(path)], top_k=4)
    assert [(i, round(p, 5)) for i, _, p in tab.top[:4]] == [(i, round(p, 5)) for i, _, p in predicted.top]


def test_choosing_another_method_or_input_shows_it_without_pressing_explain(qtbot, context, image_path, open_tab):
    tab = open_tab(GradCamTab)
    context.set_model(_run(_three_way(), ["ant", "bee", "cat"]))
    index = tab.method_combo.findData("saliency")
    tab.method_combo.setCurrentIndex(index)
    tab.method_combo.activated.emit(index)  # as a user's pick: nothing shown yet, so nothing runs
    assert not context.runner.busy and tab.result is None
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.show_image(image_path)
    assert tab.result.method == "saliency"

    index = tab.method_combo.findData("gradcam")
    tab.method_combo.setCurrentIndex(index)
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.method_combo.activated.emit(index)
    assert tab.result.method == "gradcam"
    index = tab.input_combo.findData("predict")
    tab.input_combo.setCurrentIndex(index)
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.input_combo.activated.emit(index)
    assert "as convscope predict" in tab.input_text


@pytest.mark.parametrize("method", ["gradcam++", "scorecam"])
def test_tab_heatmap_equals_the_clis_saved_heatmap(qtbot, context, image_path, tmp_path, open_tab, method):
    """One route: for the same image, model, class, method and input, `convscope gradcam
    --save-heatmap` writes exactly the array the tab draws."""
    from engine.cli import main
    from engine.models.loading import load_model

    model_path = tmp_path / "three.keras"
    _three_way().save(model_path)
    tab = open_tab(GradCamTab)
    context.set_model(load_model(model_path))
    tab.set_method(method)
    for mode in ("whole", "predict", "resize"):
        tab.input_combo.setCurrentIndex(tab.input_combo.findData(mode))
        with qtbot.waitSignal(tab.done, timeout=60_000):
            tab.show_image(image_path, class_index=1)
        assert tab.last_error == "" and tab.result.class_index == 1
        heat = tmp_path / f"{mode}.npy"
        assert main(["gradcam", str(model_path), image_path, "--class", "1", "--method", method, "--input", mode,
                     "--out", str(tmp_path / f"{mode}.png"), "--save-heatmap", str(heat)]) == 0
        np.testing.assert_array_equal(np.load(heat), tab.explanation.heatmap)
        assert tab.overlay_image().shape[:2] == np.load(heat).shape
        assert np.load(heat).shape == ((32, 32) if mode == "predict" else (36, 44))
