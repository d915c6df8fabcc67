"""Name the layer behind an operation a format cannot express.

Converters report graph paths such as ``functional_1/weird_layer_1/Svd`` (TensorFlow name scopes:
the model's name, then layer names, each possibly with a ``_N`` suffix). Matching those parts
against the model's (nested) layer names gives the user a layer to replace rather than an op name.
"""

from __future__ import annotations

import re

from engine.errors import ExportError

_SUFFIX = re.compile(r"_\d+$")


def _layers_by_name(model) -> dict[str, str]:
    """Every layer's name → its class name, nested models included."""
    found: dict[str, str] = {}
    stack = list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        found.setdefault(layer.name, type(layer).__name__)
        stack.extend(getattr(layer, "layers", []))
    return found


def layer_for_op(model, op_path: str) -> str | None:
    """``"name (Class)"`` of the innermost layer named in ``op_path``, or None."""
    layers = _layers_by_name(model)
    match = None
    for part in op_path.split("/")[:-1]:
        for candidate in (part, _SUFFIX.sub("", part)):
            if candidate in layers and candidate != model.name:
                match = f"{candidate} ({layers[candidate]})"
                break
    return match


def unexpressible(model, format_label: str, ops: dict[str, str], fix: str) -> ExportError:
    """An error naming the layers (else the ops) ``format_label`` cannot express. ``ops``: op type → a graph path."""
    parts = []
    for op_type, path in sorted(ops.items()):
        layer = layer_for_op(model, path)
        parts.append(f"layer {layer} uses {op_type}" if layer else f"operation {op_type} ({path})")
    return ExportError(f"{format_label} cannot express this model: {'; '.join(parts)}", fix)


_TFLITE_LOC = re.compile(r'fused\["(?P<op>[A-Za-z0-9_]+):", "(?P<path>[^"@]+)@')
_TFLITE_CUSTOM = re.compile(r"Custom ops: (?P<ops>[A-Za-z0-9_, ]+)")
_TFLITE_FLEX = re.compile(r"Flex ops: (?P<ops>[A-Za-z0-9_, ]+)")


def tflite_failed_ops(message: str) -> dict[str, str]:
    """Op type → graph path of the ops a LiteRT conversion error names."""
    named: set[str] = set()
    for pattern in (_TFLITE_CUSTOM, _TFLITE_FLEX):
        for found in pattern.finditer(message):
            named.update(op.strip().removeprefix("Flex") for op in found.group("ops").split(",") if op.strip())
    ops: dict[str, str] = {}
    for found in _TFLITE_LOC.finditer(message):
        op = found.group("op")
        if (not named or op in named) and op not in ops and "/" in found.group("path"):
            ops[op] = found.group("path")
    for op in named:
        ops.setdefault(op, op)
    return ops
