"""Models opened the way a user opens them: the model picker with a .keras file (its Browse button),
a run folder from its list, the ImageNet base by name, the "Trust this file" box with a Lambda model;
and the Evaluation tab's "Grad-CAM of this image" answered by the real Grad-CAM tab of the window."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def _conv_model(k, *, lambda_layer: bool = False):
    inputs = k.Input((40, 40, 3))
    x = k.layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    if lambda_layer:
        x = k.layers.Lambda(lambda t: t * 1.0, name="user_code")(x)
    x = k.layers.Conv2D(6, 3, activation="relu", name="only_conv")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    return k.Model(inputs, k.layers.Dense(3, activation="softmax")(x), name="users_model")


def _pick(qtbot, context, picker, index_or_source):
    """Choose an entry of the picker's list as a user does (the combo's activated signal)."""
    index = picker.combo.findData(index_or_source) if isinstance(index_or_source, str) else index_or_source
    assert index >= 0, f"{index_or_source} is not listed"
    with qtbot.waitSignal(context.model_changed, timeout=120_000) as changed:
        picker.combo.setCurrentIndex(index)
        picker.combo.activated.emit(index)
    return changed.args[0]


def test_a_keras_file_through_the_browse_button(tf_context, open_tab, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from app.tabs.activations import ActivationsTab
    from engine.tf_runtime import keras

    path = tmp_path / "mine.keras"
    _conv_model(keras()).save(path)
    tab = open_tab(ActivationsTab)
    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **kw: (asked.append(a[1]) or str(path), "Keras models (*.keras)")))
    with qtbot.waitSignal(tf_context.model_changed, timeout=60_000) as changed:
        tab.model_picker.browse_button.click()
    loaded = changed.args[0]
    assert asked == ["Open a Keras model"]
    assert loaded.kind == "file" and os.path.samefile(loaded.source, path) and loaded.input_size == 40
    assert tab.model_picker.combo.currentData() == str(path)
    assert tab.model_picker.status.text() == f"Loaded: {loaded.label}"
    from PySide6.QtCore import Qt

    flags = Qt.MatchFlag.MatchRecursive | Qt.MatchFlag.MatchContains
    assert tab.layer_tree.findItems("only_conv", flags)  # the tab lists this file's layers


def test_a_run_folder_from_the_list_and_the_imagenet_base_by_name(tf_context, open_tab, qtbot, shapes, cached):
    from app.tabs.gradcam import GradCamTab
    from engine.paths import default_runs_dir
    from engine.train.config import TrainConfig
    from engine.train.strategies import train

    run = train(TrainConfig(data=str(shapes), epochs=1, batch_size=8, image_size=48, patience=0,
                            tensorboard=False)).run_dir
    assert Path(run).parent == default_runs_dir()  # where a user's runs go, so the picker lists it
    tab = open_tab(GradCamTab)
    picker = tab.model_picker
    picker.refresh()
    loaded = _pick(qtbot, tf_context, picker, run)
    assert loaded.kind == "run" and loaded.class_names == ["circle", "square"] and loaded.input_size == 48
    assert picker.combo.itemText(picker.combo.currentIndex()) == f"Run: {Path(run).name}"
    base = _pick(qtbot, tf_context, picker, "efficientnet-lite0")
    assert base.kind == "imagenet" and len(base.class_names) == 1000 and base.input_size == 224
    assert picker.status.text() == f"Loaded: {base.label}"


def test_a_lambda_model_loads_only_once_trust_is_ticked(tf_context, open_tab, qtbot, tmp_path, errors):
    from app.tabs.activations import ActivationsTab
    from engine.tf_runtime import keras

    path = tmp_path / "with-code.keras"
    _conv_model(keras(), lambda_layer=True).save(path)
    tab = open_tab(ActivationsTab)
    picker = tab.model_picker
    assert not picker.trust_box.isChecked()  # off unless the user ticks it
    with qtbot.waitSignal(tf_context.model_failed, timeout=60_000) as failed:
        picker.open_source(str(path))
    assert failed.args[0] == str(path) and tf_context.current_model is None
    assert picker.status.text().startswith("⚠ with-code.keras not loaded:") and "trust" in picker.status.text().lower()
    picker.trust_box.setChecked(True)
    with qtbot.waitSignal(tf_context.model_changed, timeout=60_000) as changed:
        picker.load_button.click()
    assert changed.args[0].kind == "file" and os.path.samefile(changed.args[0].source, path)
    assert "user_code" in [layer.name for layer in changed.args[0].model.layers]


def test_evaluation_hands_an_image_to_the_real_gradcam_tab(window, qtbot, shapes, tmp_path):
    from engine.predict import predict_images
    from engine.train.config import TrainConfig
    from engine.train.strategies import train

    context = window.context
    with qtbot.waitSignal(context.tf_ready, timeout=120_000):
        context.load_tf()
    run = train(TrainConfig(data=str(shapes), epochs=2, batch_size=8, image_size=48, patience=0,
                            learning_rate=1e-3, out=str(tmp_path / "run"), tensorboard=False)).run_dir
    qtbot.waitUntil(lambda: window.tab("Evaluation") is not None and window.tab("Grad-CAM") is not None,
                    timeout=30_000)  # the window builds hidden tabs after its first paint
    evaluation, gradcam = window.tab("Evaluation"), window.tab("Grad-CAM")
    with qtbot.waitSignal(evaluation.done, timeout=120_000):
        evaluation.show_run(run)
    evaluation.confusion_table.cellClicked.emit(1, 1 if evaluation.model.metrics["confusion_matrix"][1][1] else 0)
    picked = evaluation.gallery_paths()[0]
    evaluation.gallery_view.setCurrentIndex(evaluation.gallery_view.model().index(0, 0))
    with qtbot.waitSignal(gradcam.done, timeout=120_000):
        evaluation.cam_button.click()
    assert window.current_tab() is gradcam
    assert os.path.samefile(context.current_model.source, run)  # this run's model, loaded for the hand-off
    assert gradcam.image_picker.current_path() == picked and gradcam.last_error == ""
    # the tab explains the image with the run's model: its top class is the run's own prediction
    expected = predict_images(context.current_model, [picked], top_k=2)[0].top
    assert [(index, name) for index, name, _ in expected] == [(i, n) for i, n, _ in gradcam.top]
    assert gradcam.top[0][2] == pytest.approx(expected[0][2], abs=1e-4)
    heat = np.asarray(gradcam.explanation.heatmap)
    assert heat.shape[:2] == (48, 48) and np.isfinite(heat).all() and heat.max() > 0
