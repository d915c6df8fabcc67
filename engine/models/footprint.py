"""How much memory a model's config declares, measured before one of its variables is allocated.

The config is deserialized inside ``keras.StatelessScope(initialize_variables=False)``: Keras then
creates every variable with its shape and dtype but defers its initializer, so a config declaring a
layer of a trillion weights costs nothing to measure (0.2 s for EfficientNet-Lite0's config). The
deferred variables sit in a thread-local Keras list that a later top-level ``StatelessScope`` would
initialize, so the measurement runs in a thread of its own, whose list dies with it.

Before TensorFlow starts, a lower bound read from the config alone — a Dense layer holds at least
``units`` weights and biases whatever its input, a Conv2D ``filters × kernel area``, an Embedding
exactly ``input_dim × output_dim`` — refuses a declared giant layer in a fraction of a second.

A model whose variables (parameter count × dtype bytes) plus its weights entry exceed the memory this
process can get is refused with how large it claims to be; so is a weights entry far larger than
the variables it is meant to fill (Keras reads that entry whole into memory). A config this dry run
cannot deserialize is left to Keras's own load, whose error then names the problem.
"""

from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelFileError
from engine.memory import available_memory, format_bytes

OPTIMIZER_SLOTS = 3  # a checkpoint holds the weights plus optimizer state: Adam with amsgrad keeps 3 slots
WEIGHTS_MARGIN = 16 << 20  # h5 overhead: ~1.5 kB per variable measured (Lite0: 387 kB over 247 variables)
PER_VARIABLE_OVERHEAD = 4 << 10
# Lite0 has 144 layers, the largest keras.applications model (NASNetLarge) about 1,040. Building a
# layer symbolically costs ~5 ms and ~18 kB (3,000 parallel Dense layers: 14 s, 55 MB, load ~9), so
# this bounds the dry run and Keras's own build to seconds and tens of MB.
MAX_LAYERS = 5_000


@dataclass(frozen=True)
class Footprint:
    parameters: int
    variable_bytes: int
    variables: int


def declared_footprint(config: dict, safe_mode: bool) -> Footprint | None:
    """The variables ``config`` declares, or None when it cannot be deserialized here."""
    from engine.tf_runtime import keras  # noqa: PLC0415 - TensorFlow only once a file is checked

    k = keras()
    outcome: list[Footprint] = []

    def measure() -> None:
        try:
            with k.StatelessScope(initialize_variables=False):
                model = k.saving.deserialize_keras_object(copy.deepcopy(config), safe_mode=safe_mode)  # it pops keys
                variables = list(getattr(model, "variables", []))
                parameters = sum(math.prod(int(d) for d in v.shape) for v in variables)
                size = sum(math.prod(int(d) for d in v.shape) * _itemsize(v.dtype) for v in variables)
                outcome.append(Footprint(parameters, size, len(variables)))
        except Exception:  # noqa: BLE001 - Keras's own load reports what is wrong with the config
            return

    worker = threading.Thread(target=measure, name="convscope-footprint", daemon=True)
    worker.start()
    worker.join()
    return outcome[0] if outcome else None


def check_config(path: Path, config: dict) -> None:
    """The checks that need no TensorFlow: the layer count, and the least memory the layers declare."""
    check_layer_count(path, config)
    least, biggest, biggest_name = 0, 0, ""
    for layer in _layer_configs(config):
        count = _least_parameters(layer)
        least += count * _least_itemsize(layer["config"].get("dtype"))
        if count > biggest:
            biggest, biggest_name = count, str(layer["config"].get("name", layer["class_name"]))[:80]
    have = available_memory()
    if have is not None and least > have:
        raise ModelFileError(
            f"{path}: refused: the model declares at least {format_bytes(least)} of variables (layer "
            f"'{biggest_name}' alone at least {biggest:,} parameters), more than the {format_bytes(have)} of "
            "memory available",
            "a model this large cannot be loaded here; if the file is genuine, load it on a machine with more memory")


_CAP = 1 << 80  # products stop here: a hostile config may list a million kernel dimensions
_CONVOLUTIONS = {f"Conv{d}D{t}" for d in (1, 2, 3) for t in ("", "Transpose")}
_RECURRENT_GATES = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}


def _layer_configs(config):
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("class_name"), str) and isinstance(node.get("config"), dict):
                yield node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _whole(value) -> int:
    return min(value, _CAP) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _product(values) -> int:
    total = 1
    for value in values if isinstance(values, list) else [values]:
        total = min(total * _whole(value), _CAP)
    return total


def _least_parameters(layer: dict) -> int:
    """Parameters the layer holds whatever its input's shape (its input has at least one channel)."""
    kind, cfg = layer["class_name"], layer["config"]
    bias = 1 if cfg.get("use_bias", True) else 0
    if kind == "Dense":
        return _whole(cfg.get("units")) * (1 + bias)
    if kind in _CONVOLUTIONS:
        return _whole(cfg.get("filters")) * (_product(cfg.get("kernel_size")) + bias)
    if kind in ("DepthwiseConv1D", "DepthwiseConv2D"):
        return _product(cfg.get("kernel_size")) * _whole(cfg.get("depth_multiplier", 1))
    if kind in ("SeparableConv1D", "SeparableConv2D"):
        return _whole(cfg.get("depth_multiplier", 1)) * (_product(cfg.get("kernel_size")) + _whole(cfg.get("filters")))
    if kind == "Embedding":
        return _whole(cfg.get("input_dim")) * _whole(cfg.get("output_dim"))
    if kind in _RECURRENT_GATES:
        return _RECURRENT_GATES[kind] * _whole(cfg.get("units")) ** 2
    return 0


def _least_itemsize(dtype) -> int:
    """Bytes per variable value for the layer's dtype policy; 1 when it cannot be told (int8)."""
    name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
    name = str(name or "float32")
    if name.startswith("mixed_") or name == "float32":
        return 4  # mixed precision keeps its variables in float32
    return {"float16": 2, "bfloat16": 2, "float64": 8}.get(name, 1)


def check_layer_count(path: Path, config: dict) -> None:
    """Refuse a config listing more than :data:`MAX_LAYERS` layers (no TensorFlow needed)."""
    layers = count_layers(config)
    if layers > MAX_LAYERS:
        raise ModelFileError(
            f"{path}: refused: the model declares {layers:,} layers; the largest Keras application has about "
            f"1,040 (at most {MAX_LAYERS:,} allowed)",
            "the file was altered or made to exhaust the machine; ask for the model again or train it yourself")


def count_layers(config) -> int:
    """Layers in every ``"layers"`` list of the config, nested models included (iterative: a config
    nested deeper than Python's recursion limit is counted, not crashed on)."""
    total, stack = 0, [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            layers = node.get("layers")
            if isinstance(layers, list):
                total += len(layers)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return total


def _itemsize(dtype) -> int:
    import numpy as np  # noqa: PLC0415

    try:
        return int(np.dtype(str(dtype)).itemsize)
    except TypeError:
        return 4  # bfloat16 and friends are not numpy dtypes; count them generously


def check_footprint(path: Path, config: dict, weights_bytes: int, safe_mode: bool) -> Footprint | None:
    """Refuse ``path`` when its declared variables cannot fit in memory, or its weights entry is far
    larger than those variables; see the module doc."""
    check_config(path, config)
    footprint = declared_footprint(config, safe_mode)
    if footprint is None:
        return None
    have = available_memory()
    need = footprint.variable_bytes + weights_bytes
    if have is not None and need > have:
        raise ModelFileError(
            f"{path}: refused: the model declares {footprint.parameters:,} parameters "
            f"({format_bytes(footprint.variable_bytes)} of variables), more than the {format_bytes(have)} "
            "of memory available",
            "a model this large cannot be loaded here; if the file is genuine, load it on a machine with more memory")
    expected = ((OPTIMIZER_SLOTS + 1) * footprint.variable_bytes + WEIGHTS_MARGIN
                + PER_VARIABLE_OVERHEAD * footprint.variables)
    if weights_bytes > expected:
        raise ModelFileError(
            f"{path}: refused: its weights entry holds {format_bytes(weights_bytes)}, but the model it "
            f"belongs to declares only {format_bytes(footprint.variable_bytes)} of variables",
            "the file was altered or damaged; ask for the model again or train it yourself")
    return footprint
