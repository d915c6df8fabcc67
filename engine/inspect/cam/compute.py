"""One class activation map of one image: the default layer, the class check, ReLU and scaling, the overlay.

:func:`compute_cam` is the engine's single CAM entry point below :func:`engine.inspect.explain.explain`
(which adds the input protocol and class names): it picks the layer, checks the class, lets the
method (:mod:`engine.inspect.cam.methods`) compute the raw map, then applies ReLU, scales to 0..1 and
resizes to the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.errors import IntrospectionError
from engine.inspect.cam.methods import get_method
from engine.inspect.cam.targets import class_count, output_units
from engine.inspect.layers import (
    SEP,
    canonical_path,
    image_batch,
    input_names,
    input_shapes,
    layers_fed_by,
    list_layers,
    output_shape,
    resolve_layer,
)


@dataclass(frozen=True)
class CamResult:
    heatmap: np.ndarray = field(repr=False)  # float32 (H, W) in 0..1, at the image's own size
    class_index: int
    layer: str  # the feature-map layer path ("input" for saliency)
    score: float  # the class probability on the image
    method: str = "gradcam"
    output_index: int = 0
    target: str = "logit"
    raw: np.ndarray | None = field(default=None, repr=False)  # the map at the feature map's resolution (0..1)
    explain_input: int = 0

    def to_dict(self) -> dict:
        return {
            "class_index": self.class_index,
            "layer": self.layer,
            "score": self.score,
            "method": self.method,
            "target": self.target,
            "output_index": self.output_index,
            "heatmap_shape": list(self.heatmap.shape),
        }


# ----------------------------------------------------------------------------------------------
# the default layer


def _registry_layer(model) -> str | None:
    """The registry's Grad-CAM layer of a known base in ``model`` (found by engine.bases.locate)."""
    from engine.bases.locate import locate_base  # noqa: PLC0415

    found = locate_base(model)
    return found.layer_path(found.spec.last_conv_layer) if found is not None and found.spec else None


def default_cam_layer(model) -> str:
    """The layer Grad-CAM looks at by default: the registry's ``last_conv_layer`` when the model
    contains a known base, else the last layer with a 4-D output. IntrospectionError when the
    model has no convolution layer at all."""
    infos = list_layers(model)
    if not any(info.is_conv for info in infos):
        raise IntrospectionError(
            f"model '{model.name}' has no convolution layer, so there is no feature map to explain",
            "class activation maps need a convolutional model; try --method saliency",
        )
    found = _registry_layer(model)
    if found:
        return found
    spatial = [info.path for info in infos if info.is_spatial and not info.is_model]
    return spatial[-1]


def _check_spatial(model, path: str) -> str:
    full = canonical_path(model, path)
    shape = output_shape(resolve_layer(model, full))
    if shape is None or len(shape) != 4:
        raise IntrospectionError(
            f"layer '{full}' has output shape {shape}, not a spatial feature map (batch, h, w, channels)",
            f"choose a convolution layer, e.g. '{default_cam_layer(model)}'",
        )
    return full


def cam_layer(model, method: str, layer: str | None, explain_input: int = 0) -> str:
    """The layer path a method explains: "input" for saliency, else ``layer`` checked, else the
    default — for a model with several inputs, the last 4-D layer the explained input reaches."""
    if get_method(method).layer_is_input:
        return "input"
    fed = layers_fed_by(model, explain_input)
    if layer:
        path = _check_spatial(model, layer)
        if path.split(SEP)[0] not in fed:
            raise IntrospectionError(f"layer '{path}' does not see input '{input_names(model)[explain_input]}'",
                                     "choose a layer on that input's branch")
        return path
    path = default_cam_layer(model)
    if path.split(SEP)[0] in fed:
        return path
    spatial = [i.path for i in list_layers(model) if i.is_spatial and not i.is_model and i.path.split(SEP)[0] in fed]
    if not spatial:
        raise IntrospectionError(f"no spatial layer sees input '{input_names(model)[explain_input]}'",
                                 "try --method saliency")
    return spatial[-1]


def check_class(model, class_index, output_index: int = 0) -> int:
    n_classes = class_count(model, output_index)
    if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
        raise IntrospectionError(f"class index must be an integer, got {class_index!r}")
    if not 0 <= int(class_index) < n_classes:
        raise IntrospectionError(
            f"class index {class_index} is out of range: the model's output scores {n_classes} classes",
            f"choose a class between 0 and {n_classes - 1}",
        )
    return int(class_index)


# ----------------------------------------------------------------------------------------------
# public functions


def predict_scores(model, batch, output_index: int = 0) -> np.ndarray:
    outputs = model(batch if not isinstance(batch, tuple) else list(batch), training=False)
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[output_index]
    return np.asarray(outputs)[0]


def resize_heatmap(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 0..1 heatmap to (height, width)."""
    import cv2  # noqa: PLC0415

    height, width = size
    if heatmap.shape == (height, width):
        return heatmap.astype(np.float32)
    return np.clip(cv2.resize(heatmap.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR), 0, 1)


def scale_map(raw: np.ndarray) -> np.ndarray:
    """ReLU, then divided by the peak (an all-zero map stays zero)."""
    raw = np.maximum(np.nan_to_num(np.asarray(raw, np.float32)), 0.0)
    peak = float(raw.max()) if raw.size else 0.0
    return raw / peak if peak > 0 else np.zeros_like(raw)


def compute_cam(
    model,
    image,
    class_index: int | None = None,
    layer: str | None = None,
    method: str = "gradcam",
    output_index: int = 0,
    resize: bool = True,
    target: str = "logit",
    explain_input: int = 0,
    others: list | None = None,
) -> CamResult:
    """A class activation map of ``image`` (raw RGB (H, W, 3), 0..255) for ``class_index``
    (default: the predicted class) at ``layer`` (default: :func:`default_cam_layer`).

    Returns the float heatmap (H, W) in 0..1 at the image's own size; see :func:`overlay`.
    An image of another size than the model's fixed input is resized to it, unless ``resize`` is
    False: then the model is re-traced at the image's own size (fully convolutional models with a
    global pooling head; a Flatten head cannot, and says so).

    A model with several inputs: ``image`` goes to input ``explain_input`` and ``others`` (one image
    per other input, in the model's order) are held fixed, each resized to its input's size.
    """
    cam_method = get_method(method)
    shapes = input_shapes(model)
    if not 0 <= explain_input < len(shapes):
        raise IntrospectionError(f"input index {explain_input} is out of range: model '{model.name}' has "
                                 f"{len(shapes)} input(s)", f"choose an input between 0 and {len(shapes) - 1}")
    shape = shapes[explain_input]
    other_indices = [i for i in range(len(shapes)) if i != explain_input]
    others = list(others or [])
    if len(others) != len(other_indices):
        raise IntrospectionError(f"model '{model.name}' has {len(shapes)} inputs: give one image for each of the "
                                 f"{len(other_indices)} other input(s), got {len(others)}",
                                 "e.g. --image NAME=PATH for each input not explained")
    rest = tuple(image_batch(model, other, i)[0] for i, other in zip(other_indices, others))
    output_units(model, output_index)
    array = np.asarray(image)
    input_shape = None
    if not resize and array.ndim == 3 and len(shape) == 4 and tuple(array.shape) != tuple(shape[1:]):
        input_shape = tuple(array.shape)
        batch, size = array.astype(np.float32)[None], tuple(array.shape[:2])
    else:
        batch, size = image_batch(model, image, explain_input)
    if class_index is None:
        if input_shape is not None:
            raise IntrospectionError("give a class index when resize=False", "e.g. the class predicted on the resized image")
        inputs = list(rest[:explain_input]) + [batch] + list(rest[explain_input:])
        scores = predict_scores(model, tuple(inputs) if rest else batch, output_index)
        class_index = int(scores[0] >= 0.5) if scores.shape[-1] == 1 else int(np.argmax(scores))
    class_index = check_class(model, class_index, output_index)
    layer_path = cam_layer(model, method, layer, explain_input)
    raw, score = cam_method.raw_cam(model, batch, class_index, layer_path, output_index, target, input_shape,
                                    explain_input, rest)
    raw = scale_map(raw)
    return CamResult(
        heatmap=resize_heatmap(raw, size).astype(np.float32),
        class_index=class_index,
        layer=layer_path,
        score=score,
        method=cam_method.name,
        output_index=output_index,
        target=target,
        raw=raw,
        explain_input=explain_input,
    )


def overlay(image_uint8, heatmap, alpha: float = 0.4) -> np.ndarray:
    """The heatmap in OpenCV's jet colormap blended over the image: ``(1 − alpha)·image +
    alpha·jet`` (RGB uint8 in and out; the heatmap is resized to the image if needed)."""
    import cv2  # noqa: PLC0415

    image = np.asarray(image_uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise IntrospectionError(f"overlay needs an RGB image (H, W, 3), got shape {image.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise IntrospectionError(f"alpha must be between 0 and 1, got {alpha}")
    heat = resize_heatmap(np.clip(np.asarray(heatmap, dtype=np.float32), 0, 1), image.shape[:2])
    jet = cv2.applyColorMap(np.uint8(np.round(255 * heat)), cv2.COLORMAP_JET)
    jet = cv2.cvtColor(jet, cv2.COLOR_BGR2RGB).astype(np.float32)
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * jet
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)
