"""Nested layer paths, the layer tree, and one-graph "tap" models that see inside nested bases.

A model in ConvScope is often the book's shape: a pretrained base (itself a Keras model) inside a
Sequential or functional model, followed by a head. Asking Keras for ``base.get_layer(x).output``
and ``model.output`` together fails with "Graph disconnected": the inner tensor lives in the
base's own graph. :func:`build_tap_model` instead re-runs the outer model layer by layer on a new
input (Sequential: in order; functional: through ``keras.models.clone_model`` with the *same*
layer objects and a ``call_function``), descending into the nested model that holds a requested
layer the same way, so the inner feature maps and the final outputs come from ONE graph and share
the model's weights.

Layers are addressed by paths such as ``"efficientnet_lite0/top_activation"``. A bare name that is
not a top-level layer but occurs exactly once anywhere inside is accepted too.
"""

from __future__ import annotations

import collections
import difflib
import threading
import weakref
from dataclasses import asdict, dataclass
from typing import Any, Callable

from engine.errors import IntrospectionError
from engine.tf_runtime import keras

SEP = "/"
HEAD_INPUT = "\x00head-input"  # record key of the tensor entering the output layer


@dataclass(frozen=True)
class LayerInfo:
    path: str
    class_name: str
    output_shape: tuple | None  # batch axis included (None), or None when the layer has no single output
    params: int
    depth: int  # 0 for layers of the model itself, 1 inside a nested model, ...
    is_conv: bool
    is_spatial: bool  # 4-D output (batch, height, width, channels)
    is_model: bool = False  # a nested model whose own layers follow with depth + 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_shape"] = list(self.output_shape) if self.output_shape is not None else None
        return data


# ----------------------------------------------------------------------------------------------
# helpers


def _conv_types() -> tuple:
    layers = keras().layers
    return (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D, layers.Conv2DTranspose)


def _is_model(layer) -> bool:
    return isinstance(layer, keras().Model)


def _is_input_layer(layer) -> bool:
    return isinstance(layer, keras().layers.InputLayer)


def _children(model) -> list:
    return [layer for layer in model.layers if not _is_input_layer(layer)]


def output_shape(layer) -> tuple | None:
    """The layer's output shape (batch axis included), or None when it has no single output."""
    try:
        output = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(output, (list, tuple)):
        return None if len(output) != 1 else tuple(output[0].shape)
    return tuple(output.shape)


def _params(layer) -> int:
    try:
        return int(layer.count_params())
    except (ValueError, AttributeError):
        return 0


def _walk(model, prefix: str, depth: int):
    for layer in _children(model):
        path = prefix + layer.name
        yield path, layer, depth
        if _is_model(layer):
            yield from _walk(layer, path + SEP, depth + 1)


def list_layers(model) -> list[LayerInfo]:
    """Every layer of ``model`` in order, nested models expanded right after their own entry."""
    conv = _conv_types()
    infos = []
    for path, layer, depth in _walk(model, "", 0):
        shape = output_shape(layer)
        infos.append(
            LayerInfo(
                path=path,
                class_name=type(layer).__name__,
                output_shape=shape,
                params=_params(layer),
                depth=depth,
                is_conv=isinstance(layer, conv),
                is_spatial=shape is not None and len(shape) == 4,
                is_model=_is_model(layer),
            )
        )
    return infos


def canonical_path(model, path: str) -> str:
    """The full path of the layer ``path`` names (a full path, or a bare name unique in the tree)."""
    _, full = _resolve(model, path)
    return full


def resolve_layer(model, path: str):
    """The layer object at ``path`` (e.g. ``"vgg16/block5_conv3"``); IntrospectionError if absent."""
    layer, _ = _resolve(model, path)
    return layer


def _resolve(model, path: str):
    if not isinstance(path, str) or not path.strip(SEP + " "):
        raise IntrospectionError("no layer given", "name a layer; `convscope layers MODEL` lists them")
    parts = path.strip(SEP).split(SEP)
    current = model
    for i, part in enumerate(parts):
        children = {layer.name: layer for layer in _children(current)} if _is_model(current) else {}
        if part in children:
            current = children[part]
            continue
        if i == 0 and len(parts) == 1:
            matches = [(p, layer) for p, layer, _ in _walk(model, "", 0) if layer.name == part]
            if len(matches) == 1:
                return matches[0][1], matches[0][0]
            if len(matches) > 1:
                raise IntrospectionError(
                    f"layer name '{part}' occurs {len(matches)} times in model '{model.name}'",
                    "give its full path: " + ", ".join(p for p, _ in matches),
                )
        all_paths = [p for p, _, _ in _walk(model, "", 0)]
        close = difflib.get_close_matches(path, all_paths, n=3, cutoff=0.5)
        where = f"inside '{SEP.join(parts[:i])}'" if i else f"in model '{model.name}'"
        hint = ("did you mean " + ", ".join(f"'{c}'" for c in close) + "?") if close else (
            "`convscope layers MODEL` lists the layer paths"
        )
        raise IntrospectionError(f"no layer '{part}' {where} (path '{path}')", hint)
    return current, SEP.join(parts)


def single_input_shape(model) -> tuple:
    """The model's one input shape (batch axis included); IntrospectionError for several inputs."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise IntrospectionError(
            f"model '{model.name}' has no defined input",
            "build it on an input shape first (e.g. with keras.Input) or load it from a .keras file",
        )
    if len(inputs) != 1:
        raise IntrospectionError(
            f"model '{model.name}' has {len(inputs)} inputs; ConvScope inspects models with one image input",
            "wrap the image branch in its own model and inspect that",
        )
    return tuple(inputs[0].shape)


def one_hwc(array, expected: str, fix: str, dtype=None):
    """``array`` as one (height, width, channels) array, a leading batch axis of 1 dropped;
    IntrospectionError("<expected>, got shape …", fix) for any other shape."""
    import numpy as np  # noqa: PLC0415

    array = np.asarray(array, dtype=dtype)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3:
        raise IntrospectionError(f"{expected}, got an array of shape {array.shape}", fix)
    return array


def fixed_image_size(model, input_index: int = 0) -> tuple[int, int] | None:
    """(height, width) of the model's image input (``input_index``) when both are fixed; None when
    either is free or the model has no defined input. The one place the input size is read from a model."""
    try:
        shape = tuple(model.inputs[input_index].shape)
    except (AttributeError, IndexError, TypeError):
        return None
    if len(shape) != 4 or shape[1] is None or shape[2] is None:
        return None
    return int(shape[1]), int(shape[2])


def input_shapes(model) -> list[tuple]:
    """Every input shape of the model (batch axis included); IntrospectionError when it has none."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise IntrospectionError(
            f"model '{model.name}' has no defined input",
            "build it on an input shape first (e.g. with keras.Input) or load it from a .keras file",
        )
    return [tuple(tensor.shape) for tensor in inputs]


def input_names(model) -> list[str]:
    return [str(getattr(tensor, "name", f"input_{i}")) for i, tensor in enumerate(model.inputs or [])]


def resolve_input(model, spec: int | str | None) -> int:
    """The index of the input named or numbered by ``spec`` (None: the first)."""
    names = input_names(model)
    return _resolve_index(spec, names, "input", "--explain-input")


def layers_fed_by(model, input_index: int) -> set[str]:
    """Names of the top-level layers that input ``input_index`` of a functional model reaches
    (all layers for a model with one input)."""
    if len(model.inputs or []) <= 1:
        return {layer.name for layer in model.layers}
    from engine.inspect.graph import model_dag  # noqa: PLC0415

    reached = {input_names(model)[input_index]}
    for node in model_dag(model):  # topological order
        if node.name in reached or any(name in reached for name in node.inbound):
            reached.add(node.name)
    return reached


def resolve_output(model, spec: int | str | None) -> int:
    """The index of the output named or numbered by ``spec`` (None: the first)."""
    names = list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(output_count(model))])
    return _resolve_index(spec, names, "output", "--output")


def _resolve_index(spec, names: list[str], kind: str, option: str) -> int:
    if spec is None:
        return 0
    text = str(spec).strip()
    if text.isdigit() and int(text) < len(names):
        return int(text)
    if text in names:
        return names.index(text)
    raise IntrospectionError(f"{option} {text}: the model has no {kind} of that name or number",
                             f"its {kind}s: " + ", ".join(f"{i} {n}" for i, n in enumerate(names)))


def output_count(model) -> int:
    return len(getattr(model, "outputs", None) or [None])


# ----------------------------------------------------------------------------------------------
# one-graph tap models


def _trace(model, x, targets: list[str], record: dict, prefix: str, head=None):
    """Apply ``model`` to the symbolic tensor ``x`` layer by layer, recording the outputs of the
    layers named by ``targets`` (paths relative to ``model``) in ``record`` (full path → tensor)."""
    wanted: dict[str, list[str]] = {}
    for target in targets:
        first, _, rest = target.partition(SEP)
        wanted.setdefault(first, []).append(rest)

    def call(layer, *args, _record=None, **kwargs):
        rec = record if _record is None else _record
        subs = wanted.get(layer.name, [])
        inner = [s for s in subs if s]
        if inner:
            if len(args) != 1 or kwargs.get("mask") is not None:
                raise IntrospectionError(
                    f"nested model '{prefix + layer.name}' is called with several inputs",
                    "ConvScope can look inside nested models with one input only",
                )
            out = _trace(layer, args[0], inner, rec, prefix + layer.name + SEP)
        else:
            out = layer(*args, **kwargs)
        if "" in subs:
            rec.setdefault(prefix + layer.name, out)
        if head is not None and layer is head:
            rec.setdefault(HEAD_INPUT, args[0])
        return out

    keras_mod = keras()
    if isinstance(model, keras_mod.Sequential):
        for layer in _children(model):
            x = call(layer, x)
        return x
    # Functional: re-trace it on a fresh Input (clone_model with the SAME layer objects, recording
    # the wanted tensors), wrap inputs → [taps, outputs] as one model and call that on ``x``.
    local: dict = {}
    xs = list(x) if isinstance(x, (list, tuple)) else [x]
    if len(model.inputs) != len(xs):
        raise IntrospectionError(
            f"nested model '{prefix + model.name}' has {len(model.inputs)} inputs",
            "ConvScope can look inside nested models with one input only",
        )
    x0s = [keras_mod.Input(batch_shape=tuple(xi.shape), dtype=tensor.dtype) for xi, tensor in zip(xs, model.inputs)]
    structured = x0s if isinstance(model.input, (list, tuple)) else x0s[0]
    try:
        clone = keras_mod.models.clone_model(
            model, input_tensors=structured, clone_function=lambda layer: layer,
            call_function=lambda layer, *a, **kw: _recording_call(call, local, layer, *a, **kw),
        )
    except IntrospectionError:
        raise
    except (ValueError, TypeError) as error:
        raise IntrospectionError(
            f"cannot re-trace model '{prefix + model.name}' ({type(model).__name__}) layer by layer: {error}",
            "ConvScope looks inside Sequential and functional Keras models; subclassed models are opaque",
        ) from None
    keys = list(local)
    n_out = len(clone.outputs)
    sub = keras_mod.Model(structured, [local[key] for key in keys] + list(clone.outputs))
    results = sub(xs if isinstance(structured, list) else xs[0])
    results = list(results) if isinstance(results, (list, tuple)) else [results]
    for key, value in zip(keys, results):
        record.setdefault(key, value)
    outputs = results[len(keys):]
    return outputs[0] if n_out == 1 else outputs


def _recording_call(call, record, layer, *args, **kwargs):
    return call(layer, *args, _record=record, **kwargs)


def build_tap_model(model, layer_paths: list[str], with_outputs: bool = True, input_shape=None, head=None,
                    explain_input: int = 0):
    """A keras.Model, sharing ``model``'s layers and weights, whose outputs are the tensors of
    ``layer_paths`` (canonical paths) followed, when ``with_outputs``, by the model's own outputs.

    ``input_shape`` (without batch axis) overrides the shape of input ``explain_input``, e.g. to run
    a fully convolutional part on another image size. ``head``: a top-level layer of ``model`` whose
    input tensor is appended as the last output (to compute pre-softmax scores from its weights).
    A functional model with several inputs gives a tap model with the same inputs, in order.
    """
    keras_mod = keras()
    shapes = input_shapes(model)
    xs = [keras_mod.Input(shape=tuple(input_shape) if input_shape and i == explain_input else shape[1:],
                          dtype=tensor.dtype) for i, (shape, tensor) in enumerate(zip(shapes, model.inputs))]
    if len(xs) > 1 and isinstance(model, keras_mod.Sequential):
        raise IntrospectionError(f"Sequential model '{model.name}' with {len(xs)} inputs cannot be traced")
    x = xs if len(xs) > 1 else xs[0]
    paths = [canonical_path(model, p) for p in layer_paths]
    record: dict = {}
    final = _trace(model, x, paths, record, "", head=head)
    missing = [p for p in paths if p not in record]
    if missing:
        raise IntrospectionError(
            f"layer '{missing[0]}' is not on the path from the input to the output of '{model.name}'",
            "choose a layer the image passes through",
        )
    outs = [record[p] for p in paths]
    if with_outputs:
        outs += final if isinstance(final, list) else [final]
    if head is not None:
        if HEAD_INPUT not in record:
            raise IntrospectionError(f"layer '{head.name}' is not called in model '{model.name}'")
        outs.append(record[HEAD_INPUT])
    return keras_mod.Model(x, outs)


class _ModelCache:
    """A small LRU of compiled helpers per model (keyed by identity, without keeping dead models)."""

    def __init__(self, size: int = 16) -> None:
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, model, key, factory: Callable[[], Any]):
        full_key = (id(model), key)
        with self._lock:
            item = self._items.get(full_key)
            if item is not None and item[0]() is model:
                self._items.move_to_end(full_key)
                return item[1]
        value = factory()
        with self._lock:
            self._items[full_key] = (weakref.ref(model), value)
            self._items.move_to_end(full_key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


model_cache = _ModelCache()


# ----------------------------------------------------------------------------------------------
# images


def image_batch(model, image, input_index: int = 0):
    """One image (H, W, C) → a float32 batch (1, S, S, C) at the size of the model's input ``input_index``.

    Images are raw RGB 0..255 (ConvScope's convention); an image of another size than a model with
    a fixed input size is resized. Returns ``(batch, (H, W))`` with the image's own size.
    """
    array = one_hwc(image, "expected one image of shape (height, width, channels)",
                    "pass a single RGB image (read it with engine.data.images.read_rgb)")
    shape = input_shapes(model)[input_index]
    if len(shape) != 4:
        raise IntrospectionError(
            f"model '{model.name}' takes inputs of shape {shape[1:]}, not images",
            "inspect a convolutional image model",
        )
    channels = shape[3]
    if channels is not None and array.shape[2] != channels:
        raise IntrospectionError(
            f"the image has {array.shape[2]} channels but model '{model.name}' expects {channels}",
            "convert the image to RGB" if channels == 3 else f"give a {channels}-channel image",
        )
    height, width = array.shape[:2]
    array = array.astype("float32", copy=False)
    want_h, want_w = shape[1], shape[2]
    if (want_h is not None and want_h != height) or (want_w is not None and want_w != width):
        import cv2  # noqa: PLC0415

        new_h, new_w = want_h or height, want_w or width
        interp = cv2.INTER_AREA if new_h * new_w < height * width else cv2.INTER_LINEAR
        resized = cv2.resize(array, (new_w, new_h), interpolation=interp)
        array = resized.reshape(new_h, new_w, array.shape[2])
    return array[None, ...], (height, width)
