"""The CAM family: one base that owns the passes, four variants that supply their channel weights.

:class:`CamMethod` builds (once per model, layer, output, target and input size) a one-graph tap
model that returns the chosen feature map *and* the model's outputs (so it works on a base nested
in a Sequential, see :mod:`engine.inspect.layers`), and three compiled passes over it
(:class:`Passes`): the forward pass with the gradient of the target at the feature map, the target
scores of a batch of masked copies of the image, and the scores of a batch of whole images (what the
faithfulness curves read). A variant overrides :meth:`CamMethod.channel_weights` — Grad-CAM,
Grad-CAM++, Score-CAM (``uses_gradients = False``: it scores masked images instead) — or, for the
saliency map, whose "feature map" is the image itself, :meth:`CamMethod.combine`. ReLU and scaling
to 0..1 happen once, in :func:`engine.inspect.cam.compute.compute_cam`. The class is passed to the
compiled passes as a tensor, so every class of the same model, layer and size reuses one trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from engine.errors import IntrospectionError
from engine.inspect.cam.targets import check_target, softmax_head, split_scores, target_for
from engine.inspect.layers import build_tap_model, model_cache
from engine.tf_runtime import tf

METHODS = ("gradcam", "gradcam++", "scorecam", "saliency")
INPUT = "input"  # the layer path of the image itself (saliency)


@dataclass(frozen=True)
class Passes:
    """Compiled passes over one tap model (see the module docstring)."""

    forward: Callable  # (batch (1,H,W,C), others, class, with_gradients) → (feature map, its gradient or 0, probability)
    masked: Callable  # (batch (1,H,W,C), others, masks (n,h,w) in 0..1, class) → target scores of batch·upsampled masks
    score_images: Callable  # (images (n,H,W,C), others, class) → (target scores (n,), probabilities (n,))
    # ``others``: a tuple of (1, ...) batches for the model's other inputs, held fixed (tiled to the batch)


def _as_list(outputs) -> list:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def build_passes(model, layer: str, output_index: int = 0, target: str = "logit", input_shape=None,
                 explain_input: int = 0) -> Passes:
    """The compiled passes for ``layer`` (``"input"``: the image of input ``explain_input`` itself),
    cached per model.

    ``input_shape`` (H, W, C) traces the model at another size than its own input (fully
    convolutional models with a global pooling head can run so; a Flatten head cannot, and says so).
    """
    check_target(target)
    key = ("cam-passes", layer, output_index, target, tuple(input_shape) if input_shape else None, explain_input)

    def factory() -> Passes:
        head = softmax_head(model, output_index) if target == "logit" else None
        taps = [] if layer == INPUT else [layer]
        try:
            tap = build_tap_model(model, taps, head=head, input_shape=input_shape, explain_input=explain_input)
        except IntrospectionError:
            raise
        except (ValueError, TypeError) as error:
            raise IntrospectionError(
                f"model '{model.name}' cannot run on a {input_shape[0]}×{input_shape[1]} image ({error})",
                "give the image at the model's own input size (input 'resize')",
            ) from None
        score_of = target_for(model, output_index)
        t = tf()

        def run(batch, others):
            if others:  # the other inputs, one example each, repeated along the batch
                tiled = [t.repeat(other, t.shape(batch)[0], axis=0) for other in others]
                batch_in = tiled[:explain_input] + [batch] + tiled[explain_input:]
            else:
                batch_in = batch
            outputs = _as_list(tap(batch_in, training=False))
            differentiated, probabilities = split_scores(model, output_index, outputs, head)
            return (batch if layer == INPUT else outputs[0]), differentiated, probabilities

        @t.function(reduce_retracing=True)
        def forward(batch, others, class_index, with_gradients: bool):
            if not with_gradients:
                acts, _, probabilities = run(batch, others)
                return acts, t.zeros_like(acts), score_of(probabilities, class_index)
            with t.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(batch)
                acts, differentiated, probabilities = run(batch, others)
                score = score_of(differentiated, class_index)
            return acts, tape.gradient(score, acts), score_of(probabilities, class_index)

        @t.function(reduce_retracing=True)
        def masked(batch, others, masks, class_index):
            up = t.image.resize(masks[..., None], t.shape(batch)[1:3], method="bilinear")
            _, differentiated, _ = run(batch * up, others)
            return score_of(differentiated, class_index)

        @t.function(reduce_retracing=True)
        def score_images(images, others, class_index):
            _, differentiated, probabilities = run(images, others)
            return score_of(differentiated, class_index), score_of(probabilities, class_index)

        return Passes(forward, masked, score_images)

    return model_cache.get(model, key, factory)


class CamMethod:
    """The shared passes; a variant supplies :meth:`channel_weights` (or, for saliency, :meth:`combine`)."""

    name = "base"
    uses_gradients = True
    layer_is_input = False  # saliency: the "feature map" is the image itself
    batch_size = 32  # masked images per forward pass (Score-CAM)

    def channel_weights(self, activations: np.ndarray, gradients: np.ndarray, scorer) -> np.ndarray:
        """(h, w, C) feature map and its gradient → (C,) weights. ``scorer(masks (n, h, w))`` gives
        the target scores of the image masked by each (upsampled) mask."""
        raise NotImplementedError

    def combine(self, activations: np.ndarray, gradients: np.ndarray, scorer) -> np.ndarray:
        """The map before ReLU: the feature map's channels summed with their weights."""
        weights = np.asarray(self.channel_weights(activations, gradients, scorer), np.float32)
        return np.tensordot(activations, weights, axes=([2], [0]))

    def raw_cam(self, model, batch, class_index: int, layer: str, output_index: int = 0,
                target: str = "logit", input_shape=None, explain_input: int = 0,
                others: tuple = ()) -> tuple[np.ndarray, float]:
        """The (h, w) map before ReLU and scaling, and the class probability, for a (1, H, W, C) batch
        of input ``explain_input`` (``others``: (1, ...) batches of the other inputs, in order)."""
        passes = build_passes(model, INPUT if self.layer_is_input else layer, output_index, target, input_shape,
                              explain_input)
        t = tf()
        x = t.constant(np.asarray(batch, np.float32))
        rest = tuple(t.constant(np.asarray(o, np.float32)) for o in others)
        c = t.constant(int(class_index), dtype="int32")
        acts, grads, probability = passes.forward(x, rest, c, self.uses_gradients)

        def scorer(masks: np.ndarray) -> np.ndarray:
            chunks = [np.asarray(passes.masked(x, rest, t.constant(masks[i:i + self.batch_size]), c))
                      for i in range(0, masks.shape[0], self.batch_size)]
            return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)

        grads = np.asarray(grads)[0] if self.uses_gradients else None
        cam = self.combine(np.asarray(acts)[0], grads, scorer)
        return np.asarray(cam, np.float32), float(np.asarray(probability)[0])


class GradCAM(CamMethod):
    """Selvaraju et al.: channel weight = the gradient averaged over the feature map."""

    name = "gradcam"

    def channel_weights(self, activations, gradients, scorer):
        return gradients.mean(axis=(0, 1))


class GradCAMPlusPlus(CamMethod):
    """Chattopadhay et al.: positive gradients weighted by the closed-form alpha coefficients."""

    name = "gradcam++"

    def channel_weights(self, activations, gradients, scorer):
        g = gradients.astype(np.float64)
        g2, g3 = g**2, g**3
        sum_acts = activations.astype(np.float64).sum(axis=(0, 1), keepdims=True)
        alpha = np.where(g != 0.0, g2 / (2.0 * g2 + sum_acts * g3 + 1e-7), 0.0)
        return (np.maximum(g, 0.0) * alpha).sum(axis=(0, 1))


class ScoreCAM(CamMethod):
    """Wang et al.: each channel, scaled to 0..1 and upsampled, masks the image; the channel's weight
    is the softmax over channels of the target score of its masked image. No gradients; the masked
    images go through the model in batches."""

    name = "scorecam"
    uses_gradients = False

    def channel_weights(self, activations, gradients, scorer):
        low = activations.min(axis=(0, 1), keepdims=True)
        span = activations.max(axis=(0, 1), keepdims=True) - low
        masks = np.where(span > 0, (activations - low) / np.where(span > 0, span, 1.0), 0.0)
        scores = scorer(np.ascontiguousarray(np.moveaxis(masks, -1, 0), np.float32)).astype(np.float64)
        weights = np.exp(scores - scores.max())
        return weights / weights.sum()


class Saliency(CamMethod):
    """Simonyan et al.: |d score / d input|, the maximum over the colour channels."""

    name = "saliency"
    layer_is_input = True

    def combine(self, activations, gradients, scorer):
        return np.abs(gradients).max(axis=-1)


_METHODS = {cls.name: cls for cls in (GradCAM, GradCAMPlusPlus, ScoreCAM, Saliency)}


def get_method(name: str) -> CamMethod:
    try:
        return _METHODS[str(name).lower()]()
    except KeyError:
        raise IntrospectionError(f"unknown method '{name}'", "choose one of: " + ", ".join(METHODS)) from None
