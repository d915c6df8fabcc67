"""Where the convolutional base sits inside a classifier: found by what it is, never by position.

A ConvScope classifier nests several models: the augmentation block (a ``Sequential`` with no
weights), the base, and the dense head. Taking "the first nested model" as the base picked the
augmentation block whenever augmentation was on (issue 18). The base is instead:

1. a registry base, recognised by its Keras name (:attr:`BaseSpec.keras_name`) together with its
   Grad-CAM layer — the one named by the caller first, then any registered base; else
2. the nested model that holds the requested layer (e.g. the fine-tune start layer) and has weights.

Every place that looks for the base uses this module: fine-tuning, Grad-CAM's default layer, the
layer listing's hint, and the study's fine-tuning rung. TensorFlow is only touched through the
model objects the caller passes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidSetting

SEP = "/"


@dataclass(frozen=True)
class BaseLocation:
    path: str  # the base's layer path inside the model; "" when the model is the base itself
    model: Any  # the base (a Keras model)
    spec: Any = None  # its BaseSpec when it is a registry base, else None

    def layer_path(self, name: str) -> str:
        return f"{self.path}{SEP}{name}" if self.path else name


def _is_model(layer) -> bool:
    from engine.tf_runtime import keras  # noqa: PLC0415

    return isinstance(layer, keras().Model)


def nested_models(model, prefix: str = "") -> list[tuple[str, Any]]:
    """Every model nested in ``model`` (at any depth) with its layer path, in layer order."""
    found = []
    for layer in model.layers:
        if _is_model(layer):
            path = prefix + layer.name
            found.append((path, layer))
            found += nested_models(layer, path + SEP)
    return found


def _layer_names(model) -> set[str]:
    return {layer.name for layer in model.layers}


def _specs(name: str | None) -> list:
    from engine.bases.registry import all_bases, get_base  # noqa: PLC0415

    specs = all_bases()
    if name:
        try:
            specs = [get_base(name)] + [spec for spec in specs if spec.name != name]
        except InvalidSetting:  # a base registered in another session: recognise what is here
            pass
    return specs


def locate_base(model, name: str | None = None, layer: str | None = None,
                include_self: bool = True) -> BaseLocation | None:
    """The base inside ``model`` (see the module docstring), or None when there is none.

    ``name``: the registry base expected (a run's ``base`` setting), tried first. ``layer``: a layer
    the base must hold when no registry base is recognised. ``include_self``: the model itself may be
    the base (an ImageNet classifier); fine-tuning needs a base nested in a classifier."""
    candidates = nested_models(model)
    if include_self:
        candidates.insert(0, ("", model))
    for spec in _specs(name):
        for path, sub in candidates:
            if sub.name == spec.keras_name and spec.last_conv_layer in _layer_names(sub):
                return BaseLocation(path, sub, spec)
    if layer:
        for path, sub in candidates:
            if layer in _layer_names(sub) and sub.weights:
                return BaseLocation(path, sub, None)
    return None


def finetune_layer_names(base) -> list[str]:
    """Layers fine-tuning may start from: those with weights, except BatchNorm."""
    from engine.tf_runtime import keras  # noqa: PLC0415

    k = keras()
    return [layer.name for layer in base.layers
            if layer.weights and not isinstance(layer, k.layers.BatchNormalization)]


def _largest_weighted_nested(model):
    weighted = [(path, sub) for path, sub in nested_models(model) if finetune_layer_names(sub)]
    return max(weighted, key=lambda item: item[1].count_params(), default=(None, None))


def base_for_finetuning(model, name: str | None, start_layer: str) -> BaseLocation:
    """The nested base of ``model`` that holds ``start_layer``. InvalidSetting otherwise, listing the
    layers the base could start from (never an empty list)."""
    found = locate_base(model, name, start_layer, include_self=False)
    if found is not None and start_layer in _layer_names(found.model):
        return found
    base = found.model if found is not None else _largest_weighted_nested(model)[1]
    if base is None:
        raise InvalidSetting(f"model '{model.name}' has no nested convolutional base to fine-tune",
                             "fine-tune a model trained with the features-augmented strategy")
    raise InvalidSetting(f"base '{name or base.name}' has no layer '{start_layer}' to fine-tune from",
                         "choose one of: " + ", ".join(finetune_layer_names(base)))
