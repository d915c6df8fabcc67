"""Chapter 7 models: Grad-CAM on a functional model with two image inputs and two named outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.tf_runtime import keras, tf


def two_in_two_out(seed=21):
    """photo (32 px) and sketch (24 px), each with its own conv branch; outputs 'kind' (softmax, 3)
    and 'damaged' (sigmoid) from both branches' pooled features."""
    k = keras()
    k.utils.set_random_seed(seed)
    photo, sketch = k.Input((32, 32, 3), name="photo"), k.Input((24, 24, 3), name="sketch")
    a = k.layers.Conv2D(6, 3, activation="relu", name="photo_conv")(k.layers.Rescaling(1 / 255.0)(photo))
    b = k.layers.Conv2D(4, 3, activation="relu", name="sketch_conv")(k.layers.Rescaling(1 / 255.0)(sketch))
    features = k.layers.Concatenate(name="both")([k.layers.GlobalAveragePooling2D()(a),
                                                  k.layers.GlobalAveragePooling2D()(b)])
    kind = k.layers.Dense(3, activation="softmax", name="kind")(features)
    damaged = k.layers.Dense(1, activation="sigmoid", name="damaged")(features)
    return k.Model([photo, sketch], [kind, damaged], name="two_by_two")


def _pixels(seed, size):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _reference(model, photo, sketch, tap, output, class_index):
    """Grad-CAM written out on a second functional model over the same layers: [tap, output]."""
    k = keras()
    probe = k.Model(model.inputs, [model.get_layer(tap).output, model.get_layer(output).output,
                                   model.get_layer("both").output])
    x = [tf().constant(photo[None].astype("float32")), tf().constant(sketch[None].astype("float32"))]
    with tf().GradientTape() as tape:
        acts, probs, features = probe(x)
        tape.watch(acts)
        if output == "kind":  # softmax head: the logit
            dense = model.get_layer("kind")
            score = (tf().matmul(features, dense.kernel) + dense.bias)[:, class_index]
        else:
            score = probs[:, 0] if class_index == 1 else 1 - probs[:, 0]
    grads = tape.gradient(score, acts)
    cam = np.maximum(np.tensordot(np.asarray(acts)[0], np.asarray(grads)[0].mean(axis=(0, 1)), axes=([2], [0])), 0)
    return cam / cam.max() if cam.max() > 0 else cam


@pytest.mark.parametrize("explained, output, class_index", [("photo", "damaged", 1), ("sketch", "kind", 2),
                                                          ("photo", "kind", 0)])
def test_each_input_and_output_matches_the_reference(explained, output, class_index):
    from engine.inspect.cam import compute_cam
    from engine.inspect.layers import resolve_input, resolve_output

    model = two_in_two_out()
    photo, sketch = _pixels(1, 32), _pixels(2, 24)
    index, out = resolve_input(model, explained), resolve_output(model, output)
    image, other = (photo, sketch) if explained == "photo" else (sketch, photo)
    result = compute_cam(model, image, class_index=class_index, output_index=out, explain_input=index,
                         others=[other])
    assert result.layer == f"{explained}_conv"  # the default layer is on the explained input's branch
    ref = _reference(model, photo, sketch, f"{explained}_conv", output, class_index)
    assert ref.max() > 0
    np.testing.assert_allclose(result.raw, ref, atol=1e-5)
    probs = model([photo[None].astype("float32"), sketch[None].astype("float32")])[out].numpy()[0]
    expected = probs[class_index] if output == "kind" else (probs[0] if class_index == 1 else 1 - probs[0])
    assert result.score == pytest.approx(float(expected), abs=1e-5)


def test_cli_output_and_input_by_name_with_the_other_image(tmp_path, capsys):
    from engine.inspect.explain import ExplainRequest, assess, explain
    from engine.models.loading import load_model

    model = two_in_two_out()
    path = tmp_path / "two.keras"
    model.save(path)
    photo, sketch = tmp_path / "photo.png", tmp_path / "sketch.png"
    Image.fromarray(_pixels(3, 40)).save(photo)  # both resized to their input's size
    Image.fromarray(_pixels(4, 30)).save(sketch)
    heat = tmp_path / "h.npy"
    assert main(["gradcam", str(path), str(sketch), "--explain-input", "sketch", "--image", f"photo={photo}",
                 "--output", "kind", "--class", "1", "--out", str(tmp_path / "o.png"), "--save-heatmap", str(heat),
                 "--score", "--steps", "5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layer"] == "sketch_conv" and data["output_index"] == 0 and data["explain_input"] == 1
    assert len(data["top"]) == 3 and data["faithfulness"]["sanity"]["stages"]
    loaded = load_model(path)
    read = [np.asarray(Image.open(p).convert("RGB")) for p in (photo, sketch)]
    ours = explain(loaded, read[1], ExplainRequest(class_=1, output_index=0, explain_input=1), others={0: read[0]})
    np.testing.assert_array_equal(np.load(heat), ours.heatmap)
    assert np.load(heat).shape == (30, 30)
    trust = assess(loaded, ours, sanity=False)
    assert trust.faithfulness.probability == pytest.approx(ours.cam.score, abs=1e-5)
    # the output by index, the sigmoid's two classes
    assert main(["gradcam", str(path), str(photo), "--image", f"sketch={sketch}", "--output", "1", "--class", "0",
                 "--out", str(tmp_path / "o.png"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["output_index"] == 1 and data["layer"] == "photo_conv" and len(data["top"]) == 2
    # mistakes name the choices
    for extra, message in ((["--output", "colour"], "its outputs: 0 kind, 1 damaged"),
                           (["--explain-input", "x"], "its inputs: 0 photo, 1 sketch"),
                           ([], "no image for input 'sketch'"),
                           (["--image", f"photo={photo}"], "'photo' is the input being explained")):
        assert main(["gradcam", str(path), str(photo), "--out", str(tmp_path / "o.png"), *extra]) == 2
        assert message in capsys.readouterr().err, message
