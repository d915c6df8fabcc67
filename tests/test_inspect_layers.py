"""The layer tree and one-graph tap models through nested bases (the book's shape and others)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import IntrospectionError
from engine.tf_runtime import keras


def _functional_base(name="fbase"):
    k = keras()
    inp = k.Input((20, 20, 3))
    x = k.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    x = k.layers.MaxPooling2D(name="p1")(x)
    x = k.layers.Conv2D(6, 3, activation="relu", name="c2")(x)
    return k.Model(inp, x, name=name)


def _sequential_with_functional_base():
    k = keras()
    k.utils.set_random_seed(0)
    base = _functional_base()
    return k.Sequential(
        [k.Input((20, 20, 3)), base, k.layers.Flatten(name="flat"), k.layers.Dense(1, activation="sigmoid", name="out")],
        name="book",
    )


def _functional_with_sequential_base_after_a_layer():
    """The base is called on an intermediate tensor, not on the model's Input."""
    k = keras()
    k.utils.set_random_seed(1)
    seq = k.Sequential(
        [k.Input((20, 20, 3)), k.layers.Conv2D(5, 3, activation="relu", name="s1"),
         k.layers.Conv2D(7, 3, name="s2")],
        name="seqbase",
    )
    inp = k.Input((20, 20, 3))
    x = k.layers.Rescaling(1 / 255.0, name="scale")(inp)
    x = seq(x)
    x = k.layers.GlobalAveragePooling2D(name="gap")(x)
    return k.Model(inp, k.layers.Dense(3, activation="softmax", name="probs")(x), name="func"), seq


def test_list_layers_expands_nested_models_with_shapes_and_depth():
    from engine.inspect.layers import list_layers

    infos = list_layers(_sequential_with_functional_base())
    by_path = {i.path: i for i in infos}
    assert [i.path for i in infos] == ["fbase", "fbase/c1", "fbase/p1", "fbase/c2", "flat", "out"]
    assert by_path["fbase"].is_model and by_path["fbase"].depth == 0
    assert by_path["fbase/c1"].depth == 1 and by_path["fbase/c1"].is_conv
    assert by_path["fbase/c2"].output_shape == (None, 7, 7, 6) and by_path["fbase/c2"].is_spatial
    assert by_path["fbase/p1"].is_spatial and not by_path["fbase/p1"].is_conv
    assert by_path["flat"].output_shape == (None, 294) and not by_path["flat"].is_spatial
    assert by_path["fbase/c1"].params == 3 * 3 * 3 * 4 + 4
    assert by_path["out"].params == 294 + 1
    assert by_path["fbase/c2"].to_dict()["output_shape"] == [None, 7, 7, 6]


def test_resolve_paths_and_helpful_errors():
    from engine.inspect.layers import canonical_path, resolve_layer

    model = _sequential_with_functional_base()
    assert resolve_layer(model, "fbase/c2").name == "c2"
    assert canonical_path(model, "c2") == "fbase/c2"  # a bare name unique in the tree
    with pytest.raises(IntrospectionError, match="no layer 'c3' inside 'fbase'.*did you mean 'fbase/c2'"):
        resolve_layer(model, "fbase/c3")
    k = keras()
    twice = k.Sequential([k.Input((20, 20, 3)), _functional_base("a"), k.layers.Conv2D(2, 1, name="c9")])
    right = k.Sequential([k.Input((7, 7, 6)), k.layers.Conv2D(2, 1, name="c1")], name="right")
    outer = k.Sequential([k.Input((20, 20, 3)), _functional_base("left"), right])
    with pytest.raises(IntrospectionError, match="occurs 2 times.*left/c1, right/c1"):
        resolve_layer(outer, "c1")
    assert canonical_path(twice, "c9") == "c9"


@pytest.mark.parametrize("builder", ["sequential_functional", "functional_sequential", "two_levels"])
def test_tap_model_gives_inner_maps_and_output_from_one_graph(builder):
    from engine.inspect.layers import build_tap_model

    k = keras()
    if builder == "sequential_functional":
        model = _sequential_with_functional_base()
        inner, path = model.layers[0], "fbase/c1"
        reference = k.Model(inner.inputs[0], inner.get_layer("c1").output)
        prefix = lambda x: x  # noqa: E731
    elif builder == "functional_sequential":
        model, inner = _functional_with_sequential_base_after_a_layer()
        path = "seqbase/s2"
        reference = k.Model(inner.inputs[0], inner.get_layer("s2").output)
        prefix = lambda x: x / 255.0  # noqa: E731
    else:
        book = _sequential_with_functional_base()
        model = k.Sequential([k.Input((20, 20, 3)), k.layers.Rescaling(2.0, name="twice"), book], name="outer")
        inner = book.layers[0]
        path = "book/fbase/c2"
        reference = k.Model(inner.inputs[0], inner.get_layer("c2").output)
        prefix = lambda x: x * 2.0  # noqa: E731
    tap = build_tap_model(model, [path])
    images = np.random.default_rng(0).uniform(0, 255, (2, 20, 20, 3)).astype("float32")
    feature_map, output = tap(images)
    np.testing.assert_allclose(np.asarray(output), np.asarray(model(images)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(feature_map), np.asarray(reference(prefix(images))), rtol=1e-5, atol=1e-5)
    # shares the weights: a change to the model shows in the tap model
    layer = inner.get_layer(path.split("/")[-1])
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * 0.0, bias + 1.0])
    assert np.allclose(np.asarray(tap(images)[0]), 1.0)


def test_image_batch_checks_and_resizes():
    from engine.inspect.layers import image_batch

    model = _sequential_with_functional_base()
    batch, size = image_batch(model, np.zeros((40, 30, 3), np.uint8))
    assert batch.shape == (1, 20, 20, 3) and batch.dtype == np.float32 and size == (40, 30)
    with pytest.raises(IntrospectionError, match="one image of shape"):
        image_batch(model, np.zeros((2, 20, 20, 3)))
    with pytest.raises(IntrospectionError, match="1 channels but model 'book' expects 3"):
        image_batch(model, np.zeros((20, 20, 1)))
