"""Filter patterns by gradient ascent in input space (DLwP ch. 5.4.2), batched and compiled.

The book's recipe is the default: start from grey noise (uniform·20 + 128), maximise the mean
activation of one filter, divide the gradient by its RMS + 1e-5, step 1.0, 40 steps, then
deprocess (standardise, ×0.1, +0.5, clip to 0..1, ×255). ConvScope optimises many filters at once:
one filter per image in the batch, in one compiled ``tf.function`` step whose filter indices are a
tensor (a Python int would retrace for every filter). The gradient is normalised per image (RMS
over each image's own gradient) and each image's loss depends only on that image, so a batch gives
the same patterns as one filter at a time. Only the model up to the chosen layer is computed (a
truncated copy sharing the weights: later layers, the head and other outputs are not in the graph).
``precision="bfloat16"`` runs a bfloat16 copy of that truncated model (the CPU's AMX/AVX-512-BF16
units: several times faster); the image, the layers on raw pixels (preprocessing, the first
convolution) and the update stay float32. ``"auto"`` (the GUI's default) picks bfloat16 only on
CPUs with those units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.errors import IntrospectionError, InvalidSetting
from engine.events import CancelToken, PartialResult, Progress, Sink, discard
from engine.inspect.layers import (
    build_tap_model,
    canonical_path,
    model_cache,
    output_shape,
    resolve_layer,
    single_input_shape,
)
from engine.tf_runtime import keras, tf

BOOK_IMAGE_SIZE = 150
PRECISIONS = ("float32", "bfloat16", "auto")


def auto_precision(gpu=True):
    """What "auto" runs and why: :func:`engine.precision.choose_precision`'s decision (bfloat16 on a CPU
    with AMX or AVX-512-BF16 units: several times float32's speed there, patterns correlating with
    float32's at min 0.946, mean 0.971; see docs/benchmarks_inspect.md), else float32.
    On a GPU this module has no float16 path, so it runs float32 there. Returns (precision, reason)."""
    from engine.precision import choose_precision  # noqa: PLC0415 (no TensorFlow import)

    choice = choose_precision("auto", gpu=gpu)
    if choice.policy == "mixed_bfloat16":
        return "bfloat16", choice.reason
    if choice.policy == "mixed_float16":
        return "float32", choice.reason + "; filter patterns have no float16 path"
    return "float32", choice.reason


def resolve_precision(precision: str) -> str:
    """"auto" → :func:`auto_precision`'s choice; others unchanged."""
    if precision == "auto":
        return auto_precision()[0]
    return precision


@dataclass(frozen=True)
class FilterConfig:
    layer: str
    first: int = 0
    count: int | None = None  # None: every filter from ``first`` on
    steps: int = 40
    step_size: float = 1.0
    image_size: int | None = None  # None: the model's own input size, or 150 (the book) if free
    seed: int = 0
    batch_size: int = 16  # filters optimised together
    precision: str = "float32"
    images_per_row: int = 8
    margin: int = 5

    def validate(self) -> None:
        if not self.layer:
            raise InvalidSetting("no layer given for filter patterns", "name a convolution layer")
        if self.first < 0:
            raise InvalidSetting(f"first filter must be 0 or more, got {self.first}")
        if self.count is not None and self.count < 1:
            raise InvalidSetting(f"count must be at least 1, got {self.count}")
        if self.steps < 1:
            raise InvalidSetting(f"steps must be at least 1, got {self.steps}", "the book uses 40")
        if not self.step_size > 0:
            raise InvalidSetting(f"step size must be positive, got {self.step_size}", "the book uses 1.0")
        if self.image_size is not None and not 8 <= self.image_size <= 1024:
            raise InvalidSetting(f"image size {self.image_size} is out of range", "use 8 to 1024 pixels")
        if self.batch_size < 1:
            raise InvalidSetting(f"batch size must be at least 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise InvalidSetting(f"unknown precision '{self.precision}'", "choose float32, bfloat16 or auto")
        if self.images_per_row < 1 or self.margin < 0:
            raise InvalidSetting("images_per_row must be at least 1 and margin 0 or more")


@dataclass(frozen=True)
class FilterResult:
    layer: str
    filter_indices: list[int]
    patterns: np.ndarray = field(repr=False)  # (N, S, S, 3) uint8, deprocessed
    gallery: np.ndarray = field(repr=False)  # uint8 RGB grid of the patterns
    images: np.ndarray = field(repr=False)  # (N, S, S, 3) float32, the optimised inputs (0..255 scale)
    start_activation: np.ndarray = field(repr=False)  # (N,) mean filter activation on the start noise
    final_activation: np.ndarray = field(repr=False)  # (N,) on the optimised image
    precision: str = "float32"

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "filters": self.filter_indices,
            "image_size": int(self.patterns.shape[1]) if len(self.patterns) else None,
            "precision": self.precision,
            "start_activation": [float(v) for v in self.start_activation],
            "final_activation": [float(v) for v in self.final_activation],
        }


def start_noise(filter_index: int, size: int, channels: int, seed: int) -> np.ndarray:
    """The book's grey noise (uniform·20 + 128), seeded per filter so batching does not change it."""
    rng = np.random.default_rng([seed, filter_index])
    return (rng.random((size, size, channels)) * 20.0 + 128.0).astype(np.float32)


def deprocess(image: np.ndarray) -> np.ndarray:
    """The book's deprocess_image: standardise, ×0.1, +0.5, clip to 0..1, ×255 → uint8."""
    x = np.asarray(image, dtype=np.float64)
    x = x - x.mean()
    x = x / (x.std() + 1e-5)
    x = np.clip(x * 0.1 + 0.5, 0, 1) * 255
    return np.clip(x, 0, 255).astype(np.uint8)


def gallery(patterns: np.ndarray, images_per_row: int = 8, margin: int = 5) -> np.ndarray:
    """The book's grid of patterns with black margins; the last row is padded, not dropped."""
    n, size_h, size_w, channels = patterns.shape
    cols = max(1, min(images_per_row, n))
    rows = max(1, math.ceil(n / cols))
    grid = np.zeros((rows * size_h + (rows - 1) * margin, cols * size_w + (cols - 1) * margin, channels), np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = r * (size_h + margin), c * (size_w + margin)
        grid[top : top + size_h, left : left + size_w] = patterns[i]
    return grid


# ----------------------------------------------------------------------------------------------
# the truncated model and its reduced-precision copy


class _Reached(Exception):  # noqa: N818 - control flow: the layer was reached, stop tracing
    def __init__(self, tensor) -> None:
        super().__init__("reached")
        self.tensor = tensor


def _upto(model, x, parts: list[str], before: bool = False):
    """Apply ``model`` to the symbolic tensor ``x`` only as far as the layer ``parts`` names (a path
    split at "/"), and return that layer's output (``before``: its input): nothing after it is in
    the graph."""
    k = keras()
    name, rest = parts[0], parts[1:]

    def reach(layer, *args, **kwargs):
        if rest:
            return _upto(layer, args[0], rest, before)
        return args[0] if before else layer(*args, **kwargs)

    if isinstance(model, k.Sequential):
        for layer in model.layers:
            if isinstance(layer, k.layers.InputLayer):
                continue
            if layer.name == name:
                return reach(layer, x)
            x = layer(x)
        raise IntrospectionError(f"layer '{name}' is not in model '{model.name}'")
    x0 = k.Input(batch_shape=tuple(x.shape), dtype=model.inputs[0].dtype)

    def call(layer, *args, **kwargs):
        if layer.name == name:
            raise _Reached(reach(layer, *args, **kwargs))
        return layer(*args, **kwargs)

    try:
        k.models.clone_model(model, input_tensors=x0, clone_function=lambda layer: layer, call_function=call)
    except _Reached as reached:
        return k.Model(x0, reached.tensor)(x)
    raise IntrospectionError(f"layer '{name}' is not on the path from the input of model '{model.name}'")


def _truncated_model(model, layer: str, before: bool = False):
    """input → ``layer``'s output (``before``: its input), sharing ``model``'s weights and computing
    only what that layer needs (the layers after it, the head and the other outputs are not in the
    graph). Falls back to the general tap model for models that cannot be re-traced this way
    (never with ``before``: the caller then uses the whole layer)."""
    k = keras()
    x = k.Input(shape=single_input_shape(model)[1:], dtype=model.inputs[0].dtype)
    try:
        return k.Model(x, _upto(model, x, layer.split("/"), before))
    except (IntrospectionError, ValueError, TypeError, AttributeError):
        if before:
            return None
        return build_tap_model(model, [layer], with_outputs=False)


def model_layers(model) -> list:
    """Every leaf layer of ``model``, nested models expanded (to check what a model computes)."""
    k = keras()
    out = []
    for layer in model.layers:
        out += model_layers(layer) if isinstance(layer, k.Model) else [layer]
    return out


def _bf16_copy(model):
    """A copy of ``model`` (same weights) that computes in bfloat16 (weights kept in float32 and
    cast once per step by Keras's mixed_bfloat16 policy; convolutions, activations, pooling and
    their gradients in bfloat16). The preprocessing on the raw image (layers on ≤ 4 channels that
    are not convolutions: rescaling, mean subtraction) stays float32, so the image is rounded only
    where every later activation is too: at the first convolution's input, to bfloat16's 8-bit
    mantissa (bench/bench_inspect.py reports the correlation of the patterns with float32)."""
    k = keras()

    def clone(layer):
        config = layer.get_config()
        if not isinstance(layer, k.layers.InputLayer):
            try:
                in_channels = int(layer.input.shape[-1])
            except (AttributeError, ValueError, TypeError, IndexError):
                in_channels = None
            is_conv = isinstance(layer, (k.layers.Conv2D, k.layers.DepthwiseConv2D, k.layers.SeparableConv2D))
            if in_channels is not None and (in_channels > 4 or is_conv):
                config["dtype"] = "mixed_bfloat16"
        return type(layer).from_config(config)

    try:
        copy = k.models.clone_model(model, clone_function=clone, recursive=True)
        copy.set_weights(model.get_weights())
    except (ValueError, TypeError) as error:
        raise IntrospectionError(
            f"cannot make a bfloat16 copy of model '{model.name}': {error}",
            "use precision float32",
        ) from None
    return copy


# ----------------------------------------------------------------------------------------------
# the compiled step


def _feature_model(model, layer: str, precision: str, before: bool = False):
    def factory():
        if precision == "bfloat16":
            base = _feature_model(model, layer, "float32", before)
            return None if base is None else _bf16_copy(base)
        return _truncated_model(model, layer, before)

    return model_cache.get(model, ("filters-features", layer, precision, before), factory)


def _single_filter_conv(model, layer: str):
    """The chosen layer when it is a plain Conv2D (each image then needs ONE of its output channels,
    not all of them); None for any other layer."""
    k = keras()
    conv = resolve_layer(model, layer)
    if type(conv) is not k.layers.Conv2D or conv.groups != 1 or conv.data_format != "channels_last":
        return None
    return conv


def _one_filter_per_image(conv, inputs, indices):
    """``conv`` applied to image i with only its filter ``indices[i]``: (B, h, w).

    The B single-filter kernels run as one depthwise convolution over the images stacked along the
    channels (B·C_in channels, one kernel slice each), summed back per image — a 1/C_out share of
    the layer's work (block3_conv1 of VGG16: 1/256)."""
    t = tf()
    x = t.cast(inputs, t.float32)
    batch, height, width, c_in = (t.shape(x)[i] for i in range(4))
    kernel = t.gather(t.cast(conv.kernel, t.float32), indices, axis=3)  # (kh, kw, C_in, B)
    kh, kw = conv.kernel_size
    stacked = t.reshape(t.transpose(x, (1, 2, 0, 3)), (1, height, width, batch * c_in))
    depthwise = t.reshape(t.transpose(kernel, (0, 1, 3, 2)), (kh, kw, batch * c_in, 1))
    out = t.nn.depthwise_conv2d(stacked, depthwise, strides=(1, *conv.strides, 1),
                                padding=conv.padding.upper(), dilations=conv.dilation_rate)
    out_h, out_w = t.shape(out)[1], t.shape(out)[2]
    out = t.reduce_sum(t.reshape(out, (out_h, out_w, batch, c_in)), axis=-1)  # (h, w, B)
    if conv.use_bias:
        out = out + t.gather(t.cast(conv.bias, t.float32), indices)
    return t.transpose(conv.activation(out), (2, 0, 1))


def _compiled(model, layer: str, precision: str, size: int, channels: int):
    def factory():
        conv = _single_filter_conv(model, layer)
        before = _feature_model(model, layer, precision, before=True) if conv is not None else None
        feature_model = before if before is not None else _feature_model(model, layer, precision)
        t = tf()
        spec_img = t.TensorSpec((None, size, size, channels), t.float32)
        spec_idx = t.TensorSpec((None,), t.int32)

        def filter_means(images, indices):
            if before is not None:  # a Conv2D: compute only each image's own filter
                picked = _one_filter_per_image(conv, before(images, training=False), indices)
            else:
                acts = feature_model(images, training=False)
                picked = t.gather(acts, indices, axis=-1, batch_dims=1)  # (B, h, w): each image's filter
            return t.reduce_mean(t.cast(picked, t.float32), axis=(1, 2))

        @t.function(input_signature=[spec_img, spec_idx, t.TensorSpec((), t.float32)])
        def ascent_step(images, indices, step_size):
            with t.GradientTape() as tape:
                tape.watch(images)
                losses = filter_means(images, indices)
                total = t.reduce_sum(losses)  # images are independent: d total / d image_i = d loss_i / d image_i
            grads = t.cast(tape.gradient(total, images), t.float32)
            rms = t.sqrt(t.reduce_mean(t.square(grads), axis=(1, 2, 3), keepdims=True))
            return images + grads / (rms + 1e-5) * step_size, losses

        @t.function(input_signature=[spec_img, spec_idx])
        def measure(images, indices):
            return filter_means(images, indices)

        return ascent_step, measure

    return model_cache.get(model, ("filters-step", layer, precision, size, channels), factory)


def _layer_channels(model, path: str) -> int:
    shape = output_shape(resolve_layer(model, path))
    if shape is None or len(shape) != 4:
        raise IntrospectionError(
            f"layer '{path}' has output shape {shape}, not filters over an image (batch, h, w, filters)",
            "choose a convolution layer (`convscope layers MODEL` marks them)",
        )
    return int(shape[-1])


def _image_size(model, config: FilterConfig) -> tuple[int, int]:
    shape = single_input_shape(model)
    if len(shape) != 4:
        raise IntrospectionError(f"model '{model.name}' does not take images (input shape {shape[1:]})")
    fixed_h, fixed_w, channels = shape[1], shape[2], shape[3] or 3
    if fixed_h is not None and fixed_w is not None:
        if config.image_size is not None and (config.image_size != fixed_h or fixed_h != fixed_w):
            raise IntrospectionError(
                f"model '{model.name}' only takes {fixed_h}×{fixed_w} images, not {config.image_size}",
                f"use image size {fixed_h}, or a model built with a free input size (None, None, 3)",
            )
        return fixed_h, channels
    return config.image_size or BOOK_IMAGE_SIZE, channels


def generate_patterns(
    model, config: FilterConfig, emit: Sink = discard, cancel: CancelToken | None = None
) -> FilterResult:
    """Gradient-ascent patterns for filters ``first .. first+count-1`` of ``config.layer``.

    Emits a :class:`Progress` per step (and a :class:`PartialResult` per finished pattern, key
    ``"<layer>:<filter>"``); checks ``cancel`` between steps (raises ``JobCancelled``).
    """
    config.validate()
    layer = canonical_path(model, config.layer)
    n_filters = _layer_channels(model, layer)
    if config.first >= n_filters:
        raise IntrospectionError(
            f"layer '{layer}' has {n_filters} filters; filter {config.first} does not exist",
            f"choose first between 0 and {n_filters - 1}",
        )
    count = n_filters - config.first if config.count is None else min(config.count, n_filters - config.first)
    indices = list(range(config.first, config.first + count))
    size, channels = _image_size(model, config)
    precision = resolve_precision(config.precision)
    ascent_step, measure = _compiled(model, layer, precision, size, channels)
    t = tf()
    step_size = t.constant(config.step_size, t.float32)
    batches = [indices[i : i + config.batch_size] for i in range(0, len(indices), config.batch_size)]
    total = len(batches) * config.steps
    done = 0
    images_out, starts, finals = [], [], []
    for batch_indices in batches:
        images = t.constant(np.stack([start_noise(f, size, channels, config.seed) for f in batch_indices]))
        idx = t.constant(batch_indices, t.int32)
        start = None
        for _ in range(config.steps):
            if cancel is not None:
                cancel.raise_if_cancelled()
            images, losses = ascent_step(images, idx, step_size)
            if start is None:
                start = losses.numpy()
            done += 1
            emit(Progress(done=done, total=total, message=f"{layer}: filters {batch_indices[0]}–{batch_indices[-1]}"))
        finals.append(measure(images, idx).numpy())
        starts.append(start)
        array = images.numpy()
        images_out.append(array)
        for f, image in zip(batch_indices, array):
            emit(PartialResult(key=f"{layer}:{f}", value=deprocess(image)))
    images_all = np.concatenate(images_out)
    patterns = np.stack([deprocess(image) for image in images_all])
    return FilterResult(
        layer=layer,
        filter_indices=indices,
        patterns=patterns,
        gallery=gallery(patterns, config.images_per_row, config.margin),
        images=images_all,
        start_activation=np.concatenate(starts),
        final_activation=np.concatenate(finals),
        precision=precision,
    )
