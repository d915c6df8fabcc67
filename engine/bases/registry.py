"""The registry of convolutional bases, readable without TensorFlow.

A base is a builder plus what a caller needs to use it honestly: default input size, the layer
Grad-CAM should look at, the layer fine-tuning starts from, where its weights come from, and a label
that never calls a base "ImageNet" unless it is.

Contract for builders (``"module:function"`` strings, imported on first use):
``build(include_top: bool = False, input_size: int | None = None) -> keras.Model``.
The model takes raw RGB float input in 0..255 of shape (S, S, 3); its preprocessing is a layer
inside the model, so saved models, Grad-CAM and prediction never need a separate preprocess step.
With ``include_top=False`` the output is the last 4-D feature map (no pooling); with
``include_top=True`` (only where ``imagenet_head``) the output is 1000 softmax probabilities.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from engine.errors import InvalidSetting


@dataclass(frozen=True)
class WeightsStatus:
    present: bool
    source: str  # human-readable: a file path, a package name, or why it is missing


@dataclass(frozen=True)
class BaseSpec:
    name: str
    label: str
    builder: str
    input_size: int
    min_input_size: int
    last_conv_layer: str
    finetune_from: str
    weights_source: str
    weights_status: Callable[[], WeightsStatus] = field(compare=False)
    imagenet_head: bool = False
    attribution: str = ""
    model_name: str = ""  # the Keras name of the model ``build`` returns; default: name with "_" for "-"

    @property
    def keras_name(self) -> str:
        """The name the built model carries, by which a classifier's nested base is recognised."""
        return self.model_name or self.name.replace("-", "_")

    def build(self, include_top: bool = False, input_size: int | None = None):
        module_name, _, func_name = self.builder.partition(":")
        builder = getattr(importlib.import_module(module_name), func_name)
        size = input_size or self.input_size
        if size < self.min_input_size:
            raise InvalidSetting(
                f"image size {size} is too small for base '{self.name}'",
                f"use at least {self.min_input_size} pixels",
            )
        if include_top and not self.imagenet_head:
            raise InvalidSetting(f"base '{self.name}' has no ImageNet classifier head")
        return builder(include_top=include_top, input_size=size)


_REGISTRY: dict[str, BaseSpec] = {}


def register_base(spec: BaseSpec) -> None:
    """Add (or replace) a base. Tests register tiny bases this way."""
    _REGISTRY[spec.name] = spec


def unregister_base(name: str) -> None:
    _REGISTRY.pop(name, None)


def _ensure_builtin() -> None:
    # Importing the module registers the built-in bases once; it imports no TensorFlow.
    from engine.bases import builtin  # noqa: F401,PLC0415


def all_bases() -> list[BaseSpec]:
    _ensure_builtin()
    return list(_REGISTRY.values())


def get_base(name: str) -> BaseSpec:
    _ensure_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise InvalidSetting(f"unknown base '{name}'", f"choose one of: {known}") from None
