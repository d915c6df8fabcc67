"""Class activation maps: Grad-CAM, Grad-CAM++, Score-CAM and a plain saliency map.

One base (:class:`CamMethod`) owns the passes — a forward pass through a one-graph tap model that
returns the chosen feature map *and* the model's output (so it works on a base nested in a
Sequential, see :mod:`engine.inspect.layers`), the gradient, the weighted channel sum, ReLU,
normalisation to 0..1 and resizing to the image. Each variant only supplies its channel weights.
Targets are small callables: a sigmoid head's class 1 is ``p`` and class 0 is ``1 − p``; a softmax
head's class k is its pre-softmax score ``z[k]`` (see :func:`softmax_head`; ``p[k]`` when the softmax
is not a Dense layer's activation). The reported score is always the probability. The class is passed to the compiled step as a tensor, so the same model,
layer and image size reuse one trace for every call (latency, and memory stable over many calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.errors import IntrospectionError
from engine.inspect.layers import (
    SEP,
    build_tap_model,
    canonical_path,
    image_batch,
    list_layers,
    model_cache,
    output_count,
    output_shape,
    resolve_layer,
    single_input_shape,
)
from engine.tf_runtime import keras, tf

METHODS = ("gradcam", "gradcam++", "scorecam", "saliency")


@dataclass(frozen=True)
class CamResult:
    heatmap: np.ndarray = field(repr=False)  # float32 (H, W) in 0..1, at the image's own size
    class_index: int
    layer: str  # the feature-map layer path ("input" for saliency)
    score: float  # the target score (probability of the class) on the image
    method: str = "gradcam"
    output_index: int = 0

    def to_dict(self) -> dict:
        return {
            "class_index": self.class_index,
            "layer": self.layer,
            "score": self.score,
            "method": self.method,
            "output_index": self.output_index,
            "heatmap_shape": list(self.heatmap.shape),
        }


# ----------------------------------------------------------------------------------------------
# targets


class ClassTarget:
    """Softmax (or any multi-unit) head: the score of class ``c`` is ``outputs[:, c]``."""

    def __call__(self, outputs, class_index):
        return tf().gather(outputs, class_index, axis=-1)


class BinaryTarget:
    """One sigmoid unit: class 1 scores ``p``, class 0 scores ``1 − p``."""

    def __call__(self, outputs, class_index):
        p = outputs[:, 0]
        return tf().where(tf().equal(class_index, 1), p, 1.0 - p)


def class_count(model, output_index: int = 0) -> int:
    """How many classes the chosen output scores (a single sigmoid unit counts as 2)."""
    units = _output_units(model, output_index)
    return 2 if units == 1 else units


def _output_units(model, output_index: int) -> int:
    n = output_count(model)
    if not 0 <= output_index < n:
        raise IntrospectionError(
            f"output index {output_index} is out of range: model '{model.name}' has {n} output(s)",
            f"choose an output between 0 and {n - 1}",
        )
    shape = tuple(model.outputs[output_index].shape)
    if len(shape) != 2 or shape[-1] is None:
        raise IntrospectionError(
            f"output {output_index} of model '{model.name}' has shape {shape}, not class scores",
            "choose a classifier output (batch, classes)",
        )
    return int(shape[-1])


def _target_for(model, output_index: int):
    return BinaryTarget() if _output_units(model, output_index) == 1 else ClassTarget()


def softmax_head(model, output_index: int = 0):
    """The top-level Dense layer with a softmax activation that produces output ``output_index``,
    or None. For such heads the CAM methods differentiate the class's pre-softmax score (logit), as
    in the Grad-CAM paper: the softmax probability's gradient also pushes the other classes down,
    which smears the map of one class over the evidence for its neighbours (tabby vs tiger cat)."""
    k = keras()
    if _output_units(model, output_index) < 2:
        return None
    target = model.outputs[output_index]
    for layer in reversed(model.layers):
        if not isinstance(layer, k.layers.Dense) or layer.activation is not k.activations.softmax:
            continue
        try:
            produced = layer.output
        except (AttributeError, ValueError):
            continue
        if produced is target:
            return layer
    return None


def _logits(head, head_input):
    """The pre-softmax scores of a Dense softmax head, from the live weights."""
    t = tf()
    return t.matmul(t.cast(head_input, head.kernel.dtype), head.kernel) + head.bias


def _scores(model, output_index: int, outputs, head):
    """(gradient target's input, probabilities) from a tap model's outputs [..., model outputs, head input]."""
    n_out = output_count(model)
    preds = outputs[-n_out - (1 if head is not None else 0) + output_index]
    return (_logits(head, outputs[-1]) if head is not None else preds), preds


# ----------------------------------------------------------------------------------------------
# the default layer


def _registry_layer(model) -> str | None:
    """The registry's Grad-CAM layer of a known base nested in ``model`` (by the nested model's name)."""
    try:
        from engine.bases.registry import all_bases  # noqa: PLC0415

        specs = all_bases()
    except ImportError:  # the built-in bases not installed yet: fall back to the generic rule
        return None
    nested = [(info.path, resolve_layer(model, info.path)) for info in list_layers(model) if info.is_model]
    nested.insert(0, ("", model))
    for path, sub in nested:
        for spec in specs:
            names = {spec.name, spec.name.replace("-", "_")}
            if sub.name not in names and not spec.name.replace("-", "_").startswith(sub.name + "_"):
                continue
            layer_names = {layer.name for layer in sub.layers}
            if spec.last_conv_layer in layer_names:
                return (path + SEP if path else "") + spec.last_conv_layer
    return None


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


# ----------------------------------------------------------------------------------------------
# methods


class CamMethod:
    """The shared passes. A variant overrides :meth:`channel_weights` (graph code)."""

    name = "base"
    needs_gradients = True

    def channel_weights(self, activations, gradients):  # (1, h, w, C) each → (1, C)
        raise NotImplementedError

    input_shape = None  # set by compute_cam(resize=False): trace the model at the image's own size

    def _tap(self, model, layers, head):
        try:
            return build_tap_model(model, layers, head=head, input_shape=self.input_shape)
        except IntrospectionError:
            raise
        except (ValueError, TypeError) as error:
            raise IntrospectionError(
                f"model '{model.name}' cannot run on a {self.input_shape[0]}×{self.input_shape[1]} image ({error})",
                "let ConvScope resize the image to the model's input size (resize=True)",
            ) from None

    def _key(self, *parts):
        return ("cam", self.name, self.input_shape) + parts

    def compiled(self, model, layer: str, output_index: int):
        """A tf.function(image batch, class) → (cam (h, w) before ReLU, score), cached per model."""

        def factory():
            head = softmax_head(model, output_index)
            tap = self._tap(model, [layer], head)
            target = _target_for(model, output_index)
            tf_mod = tf()

            @tf_mod.function(reduce_retracing=True)
            def step(batch, class_index):
                with tf_mod.GradientTape() as tape:
                    outputs = tap(batch, training=False)
                    acts = outputs[0]
                    scores, preds = _scores(model, output_index, outputs, head)
                    score = target(scores, class_index)
                grads = tape.gradient(score, acts)
                weights = self.channel_weights(acts, grads)
                cam = tf_mod.reduce_sum(acts * weights[:, None, None, :], axis=-1)[0]
                return cam, target(preds, class_index)[0]

            return step

        return model_cache.get(model, self._key(layer, output_index), factory)

    def raw_cam(self, model, batch, class_index: int, layer: str, output_index: int):
        step = self.compiled(model, layer, output_index)
        cam, score = step(tf().constant(batch), tf().constant(class_index, dtype="int32"))
        return np.asarray(cam), float(score)


class GradCAM(CamMethod):
    """Selvaraju et al.: channel weight = the gradient averaged over the feature map."""

    name = "gradcam"

    def channel_weights(self, activations, gradients):
        return tf().reduce_mean(gradients, axis=(1, 2))


class GradCAMPlusPlus(CamMethod):
    """Chattopadhay et al.: positive gradients weighted by the closed-form alpha coefficients."""

    name = "gradcam++"

    def channel_weights(self, activations, gradients):
        tf_mod = tf()
        g2 = tf_mod.square(gradients)
        g3 = g2 * gradients
        sum_acts = tf_mod.reduce_sum(activations, axis=(1, 2), keepdims=True)
        alpha = g2 / (2.0 * g2 + sum_acts * g3 + 1e-7)
        alpha = tf_mod.where(tf_mod.not_equal(gradients, 0.0), alpha, tf_mod.zeros_like(alpha))
        return tf_mod.reduce_sum(tf_mod.nn.relu(gradients) * alpha, axis=(1, 2))


class ScoreCAM(CamMethod):
    """Wang et al.: each channel, upsampled and scaled to 0..1, masks the image; the channel's weight
    is the softmax over channels of the class score of its masked image. No gradients; the masked
    images go through the model in batches."""

    name = "scorecam"
    needs_gradients = False
    batch_size = 32

    def compiled(self, model, layer: str, output_index: int):
        def factory():
            head = softmax_head(model, output_index)
            tap = self._tap(model, [layer], head)
            target = _target_for(model, output_index)
            tf_mod = tf()

            @tf_mod.function(reduce_retracing=True)
            def features(batch, class_index):
                outputs = tap(batch, training=False)
                _, preds = _scores(model, output_index, outputs, head)
                return outputs[0], target(preds, class_index)

            @tf_mod.function(reduce_retracing=True)
            def masked_scores(batch, masks, class_index):  # batch (1,H,W,C), masks (n,h,w) 0..1
                size = tf_mod.shape(batch)[1:3]
                up = tf_mod.image.resize(masks[..., None], size, method="bilinear")
                outputs = tap(batch * up, training=False)
                scores, _ = _scores(model, output_index, outputs, head)
                return target(scores, class_index)

            return features, masked_scores

        return model_cache.get(model, self._key(layer, output_index), factory)

    def raw_cam(self, model, batch, class_index: int, layer: str, output_index: int):
        features, masked_scores = self.compiled(model, layer, output_index)
        tf_mod = tf()
        x = tf_mod.constant(batch)
        c = tf_mod.constant(class_index, dtype="int32")
        acts, score = features(x, c)
        acts = np.asarray(acts)[0]  # (h, w, C)
        low = acts.min(axis=(0, 1), keepdims=True)
        span = acts.max(axis=(0, 1), keepdims=True) - low
        masks = np.where(span > 0, (acts - low) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)
        masks = np.moveaxis(masks, -1, 0)  # (C, h, w)
        scores = []
        for start in range(0, masks.shape[0], self.batch_size):
            chunk = masks[start : start + self.batch_size]
            scores.append(np.asarray(masked_scores(x, tf_mod.constant(chunk), c)))
        scores = np.concatenate(scores).astype(np.float64)
        weights = np.exp(scores - scores.max())
        weights /= weights.sum()
        cam = np.tensordot(acts, weights.astype(np.float32), axes=([2], [0]))
        return cam, float(np.asarray(score)[0])


class Saliency(CamMethod):
    """Simonyan et al.: |d score / d input|, the maximum over the colour channels."""

    name = "saliency"

    def compiled(self, model, layer: str, output_index: int):
        def factory():
            head = softmax_head(model, output_index)
            tap = self._tap(model, [], head)
            target = _target_for(model, output_index)
            tf_mod = tf()

            @tf_mod.function(reduce_retracing=True)
            def step(batch, class_index):
                with tf_mod.GradientTape() as tape:
                    tape.watch(batch)
                    outputs = tap(batch, training=False)
                    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
                    scores, preds = _scores(model, output_index, outputs, head)
                    score = target(scores, class_index)
                grads = tape.gradient(score, batch)
                return tf_mod.reduce_max(tf_mod.abs(grads), axis=-1)[0], target(preds, class_index)[0]

            return step

        return model_cache.get(model, self._key(output_index), factory)


_METHODS = {cls.name: cls for cls in (GradCAM, GradCAMPlusPlus, ScoreCAM, Saliency)}


def get_method(name: str) -> CamMethod:
    try:
        return _METHODS[name.lower()]()
    except KeyError:
        raise IntrospectionError(
            f"unknown method '{name}'", "choose one of: " + ", ".join(METHODS)
        ) from None


# ----------------------------------------------------------------------------------------------
# public functions


def predict_scores(model, batch, output_index: int = 0) -> np.ndarray:
    outputs = model(batch, training=False)
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


def compute_cam(
    model,
    image,
    class_index: int | None = None,
    layer: str | None = None,
    method: str = "gradcam",
    output_index: int = 0,
    resize: bool = True,
) -> CamResult:
    """A class activation map of ``image`` (raw RGB (H, W, 3), 0..255) for ``class_index``
    (default: the predicted class) at ``layer`` (default: :func:`default_cam_layer`).

    Returns the float heatmap (H, W) in 0..1 at the image's own size; see :func:`overlay`.
    An image of another size than the model's fixed input is resized to it, unless ``resize`` is
    False: then the model is re-traced at the image's own size (fully convolutional models with a
    global pooling head; a Flatten head cannot, and says so).
    """
    cam_method = get_method(method)
    shape = single_input_shape(model)
    n_classes = class_count(model, output_index)
    array = np.asarray(image)
    if not resize and array.ndim == 3 and len(shape) == 4 and tuple(array.shape) != tuple(shape[1:]):
        cam_method.input_shape = tuple(array.shape)
        batch, size = array.astype(np.float32)[None], tuple(array.shape[:2])
    else:
        batch, size = image_batch(model, image)
    if class_index is None:
        if cam_method.input_shape is not None:
            raise IntrospectionError("give a class index when resize=False", "e.g. the class predicted on the resized image")
        scores = predict_scores(model, batch, output_index)
        class_index = int(scores[0] >= 0.5) if scores.shape[-1] == 1 else int(np.argmax(scores))
    if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
        raise IntrospectionError(f"class index must be an integer, got {class_index!r}")
    class_index = int(class_index)
    if not 0 <= class_index < n_classes:
        raise IntrospectionError(
            f"class index {class_index} is out of range: the model's output scores {n_classes} classes",
            f"choose a class between 0 and {n_classes - 1}",
        )
    if cam_method.name == "saliency":
        layer_path = "input"
    else:
        layer_path = _check_spatial(model, layer) if layer else default_cam_layer(model)
    raw, score = cam_method.raw_cam(model, batch, class_index, layer_path, output_index)
    raw = np.maximum(np.nan_to_num(raw), 0.0)
    peak = float(raw.max())
    raw = raw / peak if peak > 0 else np.zeros_like(raw)
    heatmap = resize_heatmap(raw, size)
    return CamResult(
        heatmap=heatmap.astype(np.float32),
        class_index=class_index,
        layer=layer_path,
        score=score,
        method=cam_method.name,
        output_index=output_index,
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
