"""Model presets: the book's architecture exactly, a real residual DAG, the right classifier heads."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InvalidSetting
from engine.models import presets


def test_book_scratch_has_the_books_parameter_count_and_layers():
    model = presets.build_preset("book-scratch", 150, 2)
    assert model.count_params() == 3_453_121
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 4 and kinds.count("MaxPooling2D") == 4
    assert [model.get_layer(f"conv{i}").filters for i in range(1, 5)] == [32, 64, 128, 128]
    assert "Dropout" in kinds and "Rescaling" in kinds
    assert model.get_layer("dense").units == 512
    out = model.layers[-1]
    assert out.units == 1 and out.activation.__name__ == "sigmoid"


def test_book_scratch_rescales_raw_pixels_inside_the_model():
    model = presets.build_preset("book-scratch", 64, 2)
    x = np.full((1, 64, 64, 3), 255.0, dtype="float32")
    rescaled = model.get_layer("rescaling")(x)
    assert float(np.max(rescaled)) == pytest.approx(1.0)


def test_multiclass_uses_softmax_and_sparse_loss():
    model = presets.build_preset("book-scratch", 64, 5)
    assert model.layers[-1].units == 5 and model.layers[-1].activation.__name__ == "softmax"
    assert presets.loss_for(5) == "sparse_categorical_crossentropy"
    assert presets.loss_for(2) == "binary_crossentropy"
    probs = model.predict(np.random.rand(2, 64, 64, 3).astype("float32") * 255, verbose=0)
    assert probs.shape == (2, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_mini_xception_is_a_residual_dag():
    model = presets.build_preset("mini-xception", 64, 3)
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds.count("SeparableConv2D") == 10
    assert kinds.count("Add") == 5 and "BatchNormalization" in kinds
    assert "GlobalAveragePooling2D" in kinds and "Dropout" in kinds
    # a DAG: some layer feeds two others (the residual branch and the main branch)
    add = model.get_layer("block2_add")
    assert len(add.input) == 2
    assert model.predict(np.zeros((1, 64, 64, 3), "float32"), verbose=0).shape == (1, 3)


def _copy_weights_by_name(source, target) -> None:
    for layer in target.layers:
        if layer.weights:
            layer.set_weights(source.get_layer(layer.name).get_weights())


def test_augmentation_block_sits_inside_the_model_and_is_off_at_inference():
    from engine.data.augment import build_augmentation

    model = presets.build_preset("book-scratch", 64, 2, augmentation=build_augmentation("book", seed=0))
    assert model.layers[1].name == "augmentation"
    plain = presets.build_preset("book-scratch", 64, 2)  # the same network without the block
    _copy_weights_by_name(model, plain)
    x = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    # inference (predict, training=False) gives exactly the un-augmented network's answer
    np.testing.assert_allclose(model.predict(x, verbose=0), plain.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model(x, training=False), plain(x, training=False), rtol=1e-5, atol=1e-6)
    # and the block is really there: in training the warped images reach the network
    warped = model.get_layer("augmentation")(x, training=True)
    assert not np.allclose(warped, x, atol=1.0)


def test_head_and_learning_rates():
    head = presets.build_head(128, 2)
    assert [layer.__class__.__name__ for layer in head.layers][1:] == ["Dense", "Dropout", "Dense"]
    assert head.get_layer("head_dense").units == 256
    assert head.get_layer("head_dropout").rate == 0.5
    assert presets.default_learning_rate("features", recipe="book") == 2e-5
    assert presets.default_learning_rate("scratch", "book-scratch", "book") == 1e-4
    assert presets.default_learning_rate("finetune", recipe="book") == 1e-5


@pytest.mark.parametrize("call", [
    lambda: presets.build_preset("resnet-9000", 64, 2),
    lambda: presets.build_preset("book-scratch", 40, 2),
    lambda: presets.build_preset("book-scratch", 64, 1),
])
def test_bad_preset_requests_are_invalid_settings(call):
    with pytest.raises(InvalidSetting):
        call()
