"""Layer activations: one forward pass for all requested layers, the book's channel grid, statistics."""

from __future__ import annotations

import math

import numpy as np

from engine.errors import IntrospectionError
from engine.inspect.layers import build_tap_model, canonical_path, image_batch, model_cache, one_hwc, single_input_shape
from engine.tf_runtime import tf


def _activation_function(model, paths: tuple[str, ...]):
    def factory():
        tap = build_tap_model(model, list(paths), with_outputs=False)

        @tf().function(reduce_retracing=True)
        def forward(batch):
            outs = tap(batch, training=False)
            return outs if isinstance(outs, (list, tuple)) else [outs]

        return forward

    return model_cache.get(model, ("activations", paths), factory)


def compute_activations(model, image, layer_paths) -> dict[str, np.ndarray]:
    """The activations of every layer in ``layer_paths`` for one image, from ONE forward pass.

    ``image`` is one raw RGB image (H, W, 3), 0..255 (resized to a fixed model input size).
    Returns ``{path as given: activation without the batch axis}`` (e.g. (h, w, channels)).
    """
    if isinstance(layer_paths, str):
        layer_paths = [layer_paths]
    layer_paths = list(layer_paths)
    if not layer_paths:
        raise IntrospectionError("no layers asked for", "name at least one layer")
    canon = tuple(dict.fromkeys(canonical_path(model, p) for p in layer_paths))
    single_input_shape(model)  # activations of one image: models with one input (Grad-CAM handles several)
    batch, _ = image_batch(model, image)
    forward = _activation_function(model, canon)
    values = forward(tf().constant(batch))
    by_path = {path: np.asarray(value)[0] for path, value in zip(canon, values)}
    return {given: by_path[canonical_path(model, given)] for given in layer_paths}


def _as_maps(activation) -> np.ndarray:
    return one_hwc(activation, "a channel grid needs a feature map (height, width, channels)",
                   "choose a convolution, pooling or activation layer before the Flatten/Dense head", np.float32)


def channel_grid(activation, images_per_row: int = 16, margin: int = 0) -> np.ndarray:
    """Every channel of a feature map side by side, as the book draws it: each channel standardised,
    ×64 + 128, clipped to 0..255. ALL channels are shown: the last row is padded with black tiles
    (the book's loop drops a partial last row). Returns a grey uint8 image
    (rows·h + (rows−1)·margin, cols·w + (cols−1)·margin) with cols = min(images_per_row, channels).
    """
    maps = _as_maps(activation)
    if images_per_row < 1:
        raise IntrospectionError(f"images_per_row must be at least 1, got {images_per_row}")
    height, width, channels = maps.shape
    cols = min(images_per_row, channels)
    rows = math.ceil(channels / cols)
    centred = maps - maps.mean(axis=(0, 1), keepdims=True)
    std = maps.std(axis=(0, 1), keepdims=True)
    tiles = np.clip(centred / (std + 1e-5) * 64.0 + 128.0, 0, 255).astype(np.uint8)
    grid = np.zeros((rows * height + (rows - 1) * margin, cols * width + (cols - 1) * margin), np.uint8)
    for c in range(channels):
        row, col = divmod(c, cols)
        top, left = row * (height + margin), col * (width + margin)
        grid[top : top + height, left : left + width] = tiles[:, :, c]
    return grid


def channel_stats(activation) -> dict:
    """Statistics of a feature map: overall and per-channel mean and max, and how many channels are
    all zero (dead for this image, common after ReLU deep in a network)."""
    array = np.asarray(activation, dtype=np.float32)
    if array.ndim >= 2 and array.shape[0] == 1:
        array = array[0]
    flat = array.reshape(-1, array.shape[-1])
    per_mean = flat.mean(axis=0)
    per_max = flat.max(axis=0)
    zero = np.all(flat == 0, axis=0)
    return {
        "channels": int(flat.shape[1]),
        "shape": list(array.shape),
        "mean": float(flat.mean()),
        "max": float(flat.max()),
        "min": float(flat.min()),
        "per_channel_mean": per_mean.tolist(),
        "per_channel_max": per_max.tolist(),
        "zero_channels": int(zero.sum()),
        "zero_fraction": float(zero.mean()),
    }
