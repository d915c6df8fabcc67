"""What a class activation map differentiates: the class score of one output, as a small callable.

A sigmoid head's class 1 is ``p`` and class 0 is ``1 − p``. A softmax head's class k is, by default
("logit" target), its pre-softmax score ``z[k]``, read from the Dense layer's live weights (see
:func:`softmax_head`; ``p[k]`` when the softmax is not a Dense layer's activation), as the Grad-CAM
paper does; the "probability" target differentiates ``p[k]`` itself. The reported score is always
the probability.
"""

from __future__ import annotations

from engine.errors import IntrospectionError, InvalidSetting
from engine.inspect.layers import output_count
from engine.tf_runtime import keras, tf

TARGETS = ("logit", "probability")


class ClassTarget:
    """Softmax (or any multi-unit) head: the score of class ``c`` is ``outputs[:, c]``."""

    def __call__(self, outputs, class_index):
        return tf().gather(outputs, class_index, axis=-1)


class BinaryTarget:
    """One sigmoid unit: class 1 scores ``p``, class 0 scores ``1 − p``."""

    def __call__(self, outputs, class_index):
        p = outputs[:, 0]
        return tf().where(tf().equal(class_index, 1), p, 1.0 - p)


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise InvalidSetting(f"unknown target '{target}'", "choose one of: " + ", ".join(TARGETS))
    return target


def output_units(model, output_index: int) -> int:
    """The width of output ``output_index``; IntrospectionError when it is absent or not class scores."""
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


def class_count(model, output_index: int = 0) -> int:
    """How many classes the chosen output scores (a single sigmoid unit counts as 2)."""
    units = output_units(model, output_index)
    return 2 if units == 1 else units


def target_for(model, output_index: int):
    return BinaryTarget() if output_units(model, output_index) == 1 else ClassTarget()


def softmax_head(model, output_index: int = 0):
    """The top-level Dense layer with a softmax activation that produces output ``output_index``,
    or None. For such heads the "logit" target differentiates the class's pre-softmax score: the
    softmax probability's gradient also pushes the other classes down, which smears the map of one
    class over the evidence for its neighbours (tabby vs tiger cat)."""
    k = keras()
    if output_units(model, output_index) < 2:
        return None
    produced_by_model = model.outputs[output_index]
    for layer in reversed(model.layers):
        if not isinstance(layer, k.layers.Dense) or layer.activation is not k.activations.softmax:
            continue
        try:
            produced = layer.output
        except (AttributeError, ValueError):
            continue
        if produced is produced_by_model:
            return layer
    return None


def logits(head, head_input):
    """The pre-softmax scores of a Dense softmax head, from the live weights."""
    t = tf()
    return t.matmul(t.cast(head_input, head.kernel.dtype), head.kernel) + head.bias


def split_scores(model, output_index: int, outputs: list, head):
    """(what the target differentiates, probabilities) from a tap model's outputs
    ``[taps..., model outputs..., head input?]``."""
    n_out = output_count(model)
    probabilities = outputs[-n_out - (1 if head is not None else 0) + output_index]
    return (logits(head, outputs[-1]) if head is not None else probabilities), probabilities
