"""How much memory a model's config declares, measured before one of its variables is allocated.

The config is deserialized inside ``keras.StatelessScope(initialize_variables=False)``: Keras then
creates every variable with its shape and dtype but defers its initializer, so a config declaring a
layer of a trillion weights costs nothing to measure (0.2 s for EfficientNet-Lite0's config). The
deferred variables sit in a thread-local Keras list that a later top-level ``StatelessScope`` would
initialize, so the measurement runs in a thread of its own, whose list dies with it.

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
    check_layer_count(path, config)
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
