"""The one explain route: input protocols, class resolution, and `convscope gradcam` computing the same maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.cli import main
from engine.errors import ConvScopeError
from engine.tf_runtime import keras

SIZE = 32


def _softmax_model(seed=3):
    k = keras()
    k.utils.set_random_seed(seed)
    return k.Sequential([
        k.Input((SIZE, SIZE, 3)), k.layers.Rescaling(1 / 255.0),
        k.layers.Conv2D(6, 3, activation="relu", name="conv_a"),
        k.layers.Conv2D(8, 3, activation="relu", name="conv_b"),
        k.layers.GlobalAveragePooling2D(), k.layers.Dense(3, activation="softmax", name="probs"),
    ], name="three_way")


@pytest.fixture()
def saved(tmp_path):
    """A run-like .keras file with class names, and a 48x40 photo."""
    from engine.models.loading import load_model

    model = _softmax_model()
    path = tmp_path / "three.keras"
    model.save(path)
    pixels = np.random.default_rng(1).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    pixels[10:30, 8:24] = (250, 240, 30)
    photo = tmp_path / "photo.png"
    Image.fromarray(pixels).save(photo)
    loaded = load_model(path)
    return path, photo, pixels, loaded


@pytest.mark.parametrize("mode", ["whole", "predict", "resize"])
@pytest.mark.parametrize("method", ["gradcam", "scorecam"])
def test_cli_heatmap_is_the_engine_route_for_every_input(saved, tmp_path, capsys, mode, method):
    """The CLI's saved array is explain()'s heatmap, and that heatmap is the map of the model's input
    (the photo resized as in training) drawn over what the input mode says: the full photo for whole
    and resize, the 32x32 input itself for predict."""
    from engine.data.images import resize_rgb
    from engine.inspect.cam import compute_cam, resize_heatmap
    from engine.inspect.explain import ExplainRequest, explain

    path, photo, pixels, loaded = saved
    out, heat = tmp_path / "o.png", tmp_path / "h.npy"
    assert main(["gradcam", str(path), str(photo), "--class", "2", "--method", method, "--input", mode,
                 "--out", str(out), "--save-heatmap", str(heat), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    saved_map = np.load(heat)
    ours = explain(loaded, pixels, ExplainRequest(method=method, class_=2, input=mode))
    np.testing.assert_array_equal(saved_map, ours.heatmap)
    expected = compute_cam(loaded.model, resize_rgb(pixels, SIZE), class_index=2, method=method).heatmap
    if mode == "predict":
        assert saved_map.shape == (SIZE, SIZE)
        np.testing.assert_allclose(saved_map, expected, atol=1e-5)
    else:
        assert saved_map.shape == (48, 40)
        np.testing.assert_allclose(saved_map, resize_heatmap(expected, (48, 40)), atol=1e-5)
    assert np.asarray(Image.open(out)).shape == saved_map.shape + (3,)
    assert data["input"] == mode and data["class_index"] == 2 and data["method"] == method
    assert data["top"][0]["probability"] == pytest.approx(ours.top[0][2])


def test_classes_resolve_by_index_name_and_imagenet_name(saved):
    from engine.inspect.explain import resolve_class
    from engine.models.loading import LoadedModel

    _, _, _, loaded = saved
    named = LoadedModel(model=loaded.model, class_names=["ant", "Bee", "cat"], kind="run", input_size=SIZE,
                        label="t", source="t")
    assert resolve_class(named, "bee", 3) == 1
    assert resolve_class(named, " 2 ", 3) == 2 and resolve_class(named, 0, 3) == 0
    assert resolve_class(named, None, 3) is None
    with pytest.raises(ConvScopeError, match="'dog' is not one of this model's classes.*0 ant, 1 Bee, 2 cat"):
        resolve_class(named, "dog", 3)
    nameless = LoadedModel(model=loaded.model, class_names=None, kind="file", input_size=SIZE, label="t", source="t")
    with pytest.raises(ConvScopeError, match="no class names.*between 0 and 2"):
        resolve_class(nameless, "bee", 3)
    assert resolve_class(nameless, "espresso", 1000) == 967


def test_cli_target_and_class_name(saved, tmp_path, capsys):
    path, photo, _, loaded = saved
    heat_logit, heat_prob = tmp_path / "l.npy", tmp_path / "p.npy"
    for target, heat in (("logit", heat_logit), ("probability", heat_prob)):
        assert main(["gradcam", str(path), str(photo), "--class", "1", "--target", target,
                     "--out", str(tmp_path / "o.png"), "--save-heatmap", str(heat)]) == 0
        assert f"target {target}" in capsys.readouterr().out
    assert not np.allclose(np.load(heat_logit), np.load(heat_prob), atol=1e-3)
    with pytest.raises(SystemExit) as exited:
        main(["gradcam", str(path), str(photo), "--input", "sideways", "--out", str(tmp_path / "o.png")])
    assert exited.value.code == 2
    assert "--input" in capsys.readouterr().err


@pytest.mark.slow
def test_imagenet_whole_photo_keeps_the_aspect_and_predict_is_the_centre_crop(cached, tmp_path, capsys):
    """EfficientNet-Lite0 on the 451x300 cat photo: 'whole' explains the 337x224 aspect-kept photo and
    draws over the full photo; 'predict' explains (and draws over) the 224x224 centre crop; the CLI's
    arrays are explain()'s."""
    from engine.data.images import read_rgb
    from engine.inspect.explain import ExplainRequest, explain
    from engine.models.loading import load_model
    from engine.paths import resources_dir

    photo = resources_dir() / "samples" / "chelsea.jpg"
    pixels = read_rgb(photo)
    loaded = load_model("efficientnet-lite0")
    for mode, input_shape, drawn in (("whole", None, pixels.shape[:2]), ("predict", (224, 224), (224, 224))):
        heat = tmp_path / f"{mode}.npy"
        assert main(["gradcam", "efficientnet-lite0", str(photo), "--class", "tabby", "--input", mode,
                     "--out", str(tmp_path / f"{mode}.png"), "--save-heatmap", str(heat), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["class_index"] == 281 and data["class_name"] == "tabby"
        assert tuple(np.load(heat).shape) == drawn
        if input_shape:
            assert tuple(data["input_shape"]) == input_shape and data["crop_top"] is None
        else:
            assert min(data["input_shape"]) == 224 and max(data["input_shape"]) > 224
            assert data["crop_top"]["index"] in range(281, 286)
        ours = explain(loaded, pixels, ExplainRequest(class_="tabby", input=mode))
        np.testing.assert_array_equal(np.load(heat), ours.heatmap)
