"""Bases from ``keras.applications`` built with ``weights=None`` and filled from local files only.

Keras would download ImageNet weights into ``~/.keras/models/`` (``$KERAS_HOME/models``); ConvScope
never downloads, but when a user has copied those standard files there (e.g.
``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``), they are used. Otherwise the base keeps its
random initialisation and says so in its label and weights status.

Every base built here takes raw RGB 0..255: its preprocessing is a standard Keras layer at the front
of the model, so it loads with ``safe_mode=True``:

- ``"caffe"`` (VGG16, ResNet50: RGB→BGR, then subtract the ImageNet BGR means): a ``Normalization``
  layer subtracts the means in RGB order and the first convolution's kernel has its input channels
  reversed, which gives exactly the outputs of the BGR kernel on BGR input. Unlike a 1×1 convolution
  doing the channel swap, nothing here becomes trainable when a caller unfreezes the whole base.
- ``"tf"`` (MobileNetV2, Xception): ``Rescaling(1/127.5, offset=-1)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ModelFileError
from engine.tf_runtime import keras

CAFFE_MEANS_BGR = (103.939, 116.779, 123.68)  # keras.applications' caffe means


@dataclass(frozen=True)
class KerasApp:
    name: str  # registry name
    constructor: str  # attribute of keras.applications
    model_name: str
    preprocessing: str  # "caffe" | "tf"
    first_conv: str  # the layer whose kernel sees the (preprocessed) image
    weight_files: tuple[str, ...]  # standard Keras file names, preferred first
    extra_kwargs: tuple[tuple[str, object], ...] = ()


APPS = {
    "vgg16": KerasApp("vgg16", "VGG16", "vgg16", "caffe", "block1_conv1",
                      ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                       "vgg16_weights_tf_dim_ordering_tf_kernels.h5")),
    "resnet50": KerasApp("resnet50", "ResNet50", "resnet50", "caffe", "conv1_conv",
                         ("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                          "resnet50_weights_tf_dim_ordering_tf_kernels.h5")),
    "mobilenetv2": KerasApp("mobilenetv2", "MobileNetV2", "mobilenetv2_1.00", "tf", "Conv1",
                            ("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
                             "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5"),
                            (("alpha", 1.0),)),
    "xception": KerasApp("xception", "Xception", "xception", "tf", "block1_conv1",
                         ("xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
                          "xception_weights_tf_dim_ordering_tf_kernels.h5")),
}


def keras_models_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def find_keras_weights(app_name: str) -> Path | None:
    for file_name in APPS[app_name].weight_files:
        path = keras_models_dir() / file_name
        if path.is_file():
            return path
    return None


def keras_weights_status(app_name: str) -> tuple[bool, str]:
    path = find_keras_weights(app_name)
    if path:
        return True, f"ImageNet weights from {path}"
    wanted = keras_models_dir() / APPS[app_name].weight_files[0]
    return False, f"random init: no weights file (copy Keras's {wanted.name} to {wanted.parent} to use ImageNet weights)"


def preprocessing_layer(mode: str, means_bgr=CAFFE_MEANS_BGR):
    layers = keras().layers
    if mode == "caffe":
        mean_rgb = [float(m) for m in reversed(means_bgr)]
        return layers.Normalization(mean=mean_rgb, variance=[1.0, 1.0, 1.0], name="caffe_preprocess")
    if mode == "tf":
        return layers.Rescaling(1.0 / 127.5, offset=-1.0, name="tf_preprocess")
    raise ValueError(f"unknown preprocessing {mode!r}")


def bgr_kernel_to_rgb(kernel: np.ndarray) -> np.ndarray:
    """A conv kernel (kh, kw, 3, O) trained on BGR input, rewritten to take RGB input."""
    return np.ascontiguousarray(kernel[:, :, ::-1, :])


def build_app(app: KerasApp, input_size: int, means_bgr=CAFFE_MEANS_BGR):
    """The keras.applications model (include_top=False, weights=None) with preprocessing in front."""
    k = keras()
    inputs = k.Input(shape=(input_size, input_size, 3), name="input_layer")
    x = preprocessing_layer(app.preprocessing, means_bgr)(inputs)
    constructor = getattr(k.applications, app.constructor)
    model = constructor(include_top=False, weights=None, input_tensor=x, **dict(app.extra_kwargs))
    # A flat functional model over the same layers, named like the base, with a single output tensor.
    return k.Model(inputs, model.output, name=app.model_name)


def read_legacy_h5_weights(path: Path) -> dict[str, list[np.ndarray]]:
    """Layer name -> weights from a Keras 2 / legacy ``.h5`` weights file (``save_weights`` layout)."""
    import h5py  # noqa: PLC0415 - comes with TensorFlow

    def text(value):
        return value.decode("utf8") if isinstance(value, bytes) else str(value)

    try:
        with h5py.File(path, "r") as handle:
            root = handle["model_weights"] if "model_weights" in handle else handle
            result = {}
            for layer_name in (text(n) for n in root.attrs["layer_names"]):
                group = root[layer_name]
                names = [text(n) for n in group.attrs["weight_names"]]
                if names:
                    result[layer_name] = [np.asarray(group[n][()]) for n in names]
            return result
    except (OSError, KeyError) as error:
        raise ModelFileError(f"{path}: not a readable Keras .h5 weights file ({error})",
                             "delete it or replace it with the original Keras file") from None


def set_weights_by_name(model, weights: dict[str, list[np.ndarray]], source: Path, rgb_first_conv: str | None,
                        strict: bool = True) -> int:
    """Copy ``weights`` into the layers of the same name; returns how many layers were filled."""
    filled = 0
    for layer in model.layers:
        if not layer.weights or layer.name not in weights:
            if strict and layer.weights and layer.trainable_weights:
                raise ModelFileError(f"{source}: no weights for layer {layer.name}",
                                     "the file does not belong to this architecture")
            continue
        arrays = list(weights[layer.name])
        if layer.name == rgb_first_conv:
            arrays[0] = bgr_kernel_to_rgb(arrays[0])
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [tuple(a.shape) for a in arrays] != expected:
            raise ModelFileError(f"{source}: layer {layer.name} has shapes {[a.shape for a in arrays]}, "
                                 f"expected {expected}", "the file does not belong to this architecture")
        layer.set_weights(arrays)
        filled += 1
    return filled


def build_keras_app(name: str, include_top: bool = False, input_size: int | None = None):
    app = APPS[name]
    model = build_app(app, input_size or 224)
    path = find_keras_weights(name)
    if path is not None:
        rgb_conv = app.first_conv if app.preprocessing == "caffe" else None
        set_weights_by_name(model, read_legacy_h5_weights(path), path, rgb_conv)
    return model


def build_vgg16(include_top: bool = False, input_size: int | None = None):
    return build_keras_app("vgg16", include_top, input_size)


def build_resnet50(include_top: bool = False, input_size: int | None = None):
    return build_keras_app("resnet50", include_top, input_size)


def build_mobilenetv2(include_top: bool = False, input_size: int | None = None):
    return build_keras_app("mobilenetv2", include_top, input_size)


def build_xception(include_top: bool = False, input_size: int | None = None):
    return build_keras_app("xception", include_top, input_size)
