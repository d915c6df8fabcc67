"""Data augmentation as a Keras preprocessing block placed inside the training model.

The block transforms images only in training (``model.fit``); in ``evaluate``/``predict`` Keras calls
it with ``training=False`` and it passes images through unchanged. It works on raw 0..255 floats.

The "book" preset reproduces ``ImageDataGenerator(rotation_range=40, width_shift_range=0.2,
height_shift_range=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")``
with ONE layer, :class:`RandomAffine`, that takes the book's arguments in the book's units:

- rotation_range=40: degrees, uniform in [-40°, 40°].
- width/height_shift_range=0.2: fractions of the width and height, uniform in [-0.2, 0.2].
- shear_range=0.2: a shear ANGLE in degrees (0.2°), as ImageDataGenerator reads it — not Keras'
  ``RandomShear(0.2)``, which shears by 20% of the image (about 11°). At 0.2° a pixel at the edge of a
  150-pixel image moves by under a quarter of a pixel: kept, so the preset is faithful.
- zoom_range=0.2: independent horizontal and vertical scales in [0.8, 1.2].
- horizontal_flip: a mirror image half of the time.
- fill_mode="nearest": pixels pulled in from outside the image repeat the nearest edge pixel.

Like ImageDataGenerator, it composes rotation, shift, shear, zoom and flip into one 3x3 matrix per
image and resamples each image ONCE, instead of one resample per Keras layer (RandomRotation,
RandomTranslation, RandomShear, RandomZoom): one blur instead of four, and about a quarter of the
work. The preset interpolates bilinearly, as ImageDataGenerator does (it sampled the nearest source
pixel for a while: faster, but the speed was measured only by the pipeline benchmark itself, which is
no reason to differ from the book; ``interpolation="nearest"`` is still there). The "mild" preset
(flip + shift) stays on Keras' own RandomFlip and RandomTranslation: it resamples once already.

``RandomAffine`` is registered for Keras serialization as ``convscope>RandomAffine``; a model
containing it is loaded by :mod:`engine.models.loading` without ``--trust-model`` (it is ConvScope's
own code, whitelisted by that exact name). Importing this module does not import TensorFlow: the
class is created on first use (:func:`register_layers`, or the attribute ``RandomAffine``).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from engine.errors import InvalidSetting
from engine.tf_runtime import keras as _keras

BOOK_ROTATION_DEGREES = 40.0
BOOK_SHIFT = 0.2
BOOK_SHEAR_DEGREES = 0.2
BOOK_SHEAR_FACTOR = math.tan(math.radians(BOOK_SHEAR_DEGREES))  # 0.00349 of the image size
BOOK_ZOOM = 0.2
MILD_SHIFT = 0.1

SERIALIZATION_PACKAGE = "convscope"
# ConvScope's own registered layers: exact Keras registered name -> (module, class name) in saved configs
REGISTERED_LAYERS: dict[str, tuple[str, str]] = {
    f"{SERIALIZATION_PACKAGE}>RandomAffine": (__name__, "RandomAffine"),
}
INTERPOLATIONS = ("bilinear", "nearest")
FILL_MODES = ("nearest", "constant", "reflect", "wrap", "mirror")

AUGMENTATION_PRESETS: dict[str, str] = {
    "none": "No augmentation.",
    "book": (
        "The book's ImageDataGenerator recipe, in its units: horizontal flip, rotation up to ±40°, shifts "
        "up to 20% of width and height, shear up to 0.2° (an angle, as in the book; Keras' RandomShear(0.2) "
        "would mean 20% of the image, about 11°), independent zoom 0.8–1.2 per axis, edges filled with the "
        "nearest pixel — composed into one warp per image, each output pixel blended bilinearly from four "
        "source pixels, as ImageDataGenerator does. Suits photos of objects in any pose (cats and dogs); it "
        "hurts on centred, aligned images "
        "such as product photos or scans, where rotation and zoom change what the class looks like."
    ),
    "mild": (
        "Horizontal flip and shifts up to 10% of width and height, edges filled with the nearest pixel. "
        "For centred, aligned images (product photos, documents) where the book's recipe hurts."
    ),
}

_class_lock = threading.Lock()
_classes: dict[str, type] = {}


def _zoom_bounds(zoom_range) -> tuple[float, float]:
    if isinstance(zoom_range, (int, float)):
        return 1.0 - float(zoom_range), 1.0 + float(zoom_range)
    low, high = (float(v) for v in zoom_range)
    return low, high


def _check_settings(rotation_range, width_shift_range, height_shift_range, shear_range, zoom_bounds,
                    fill_mode, interpolation) -> None:
    for name, value in (("rotation_range", rotation_range), ("shear_range", shear_range)):
        if not 0 <= value < 180:
            raise InvalidSetting(f"{name} {value}", "give an angle in degrees between 0 and 180")
    for name, value in (("width_shift_range", width_shift_range), ("height_shift_range", height_shift_range)):
        if not 0 <= value < 1:
            raise InvalidSetting(f"{name} {value}", "give a fraction of the image size, e.g. 0.2")
    low, high = zoom_bounds
    if not 0 < low <= high:
        raise InvalidSetting(f"zoom_range {zoom_bounds}", "give a fraction like 0.2 (scales 0.8-1.2) or (low, high) > 0")
    if fill_mode not in FILL_MODES:
        raise InvalidSetting(f"fill_mode '{fill_mode}'", f"use one of {', '.join(FILL_MODES)}")
    if interpolation not in INTERPOLATIONS:
        raise InvalidSetting(f"interpolation '{interpolation}'", f"use one of {', '.join(INTERPOLATIONS)}")


def _make_random_affine():
    keras = _keras()
    ops = keras.ops

    class RandomAffine(keras.layers.Layer):
        """The book's ImageDataGenerator geometry as one Keras preprocessing layer.

        Per image it draws a rotation in ±``rotation_range`` degrees, shifts in ±``width_shift_range``
        / ±``height_shift_range`` of the size, a shear angle in ±``shear_range`` DEGREES, scales in
        ``zoom_range`` (a fraction z means [1-z, 1+z], drawn independently per axis) and, with
        ``horizontal_flip``, a mirror half of the time; it composes them in ImageDataGenerator's order
        (rotation, shift, shear, zoom, then the flip) into one matrix — the same matrix
        ImageDataGenerator.apply_transform builds for the same draws — and resamples once with
        ``keras.ops.image.affine_transform``. Identity unless called with ``training=True``.
        Input: ``[B, H, W, C]`` (or ``[H, W, C]``) floats, channels last.
        """

        def __init__(self, rotation_range=0.0, width_shift_range=0.0, height_shift_range=0.0,
                     shear_range=0.0, zoom_range=0.0, horizontal_flip=False, fill_mode="nearest",
                     interpolation="bilinear", fill_value=0.0, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.rotation_range = float(rotation_range)
            self.width_shift_range = float(width_shift_range)
            self.height_shift_range = float(height_shift_range)
            self.shear_range = float(shear_range)
            self.zoom_range = list(_zoom_bounds(zoom_range))
            self.horizontal_flip = bool(horizontal_flip)
            self.fill_mode = fill_mode
            self.interpolation = interpolation
            self.fill_value = float(fill_value)
            self.seed = seed
            _check_settings(self.rotation_range, self.width_shift_range, self.height_shift_range,
                            self.shear_range, self.zoom_range, fill_mode, interpolation)
            self.seed_generator = keras.random.SeedGenerator(seed)
            self.supports_masking = True

        def sample_parameters(self, batch_size):
            """A dict of ``[batch_size]`` float32 tensors: ``angle`` and ``shear`` (radians), ``tx``,
            ``ty`` (fractions of width and height), ``zx``, ``zy`` (scales) and ``flip`` (-1 or 1)."""
            def uniform(low, high):
                return keras.random.uniform((batch_size,), low, high, dtype="float32", seed=self.seed_generator)

            rotation, shear = math.radians(self.rotation_range), math.radians(self.shear_range)
            flip = (ops.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0) if self.horizontal_flip
                    else ops.ones((batch_size,), dtype="float32"))
            return {
                "angle": uniform(-rotation, rotation),
                "tx": uniform(-self.width_shift_range, self.width_shift_range),
                "ty": uniform(-self.height_shift_range, self.height_shift_range),
                "shear": uniform(-shear, shear),
                "zx": uniform(self.zoom_range[0], self.zoom_range[1]),
                "zy": uniform(self.zoom_range[0], self.zoom_range[1]),
                "flip": flip,
            }

        @staticmethod
        def transforms(params, height, width):
            """``[B, 8]`` transforms for ``keras.ops.image.affine_transform`` from
            :meth:`sample_parameters`'s dict. Each maps an output pixel (x = column, y = row, pixel
            centres at integers) to the input point it samples:
            ``input = centre + R @ (shift + Shear @ Zoom @ Flip @ (output - centre))``, with
            R = [[cos, -sin], [sin, cos]], Shear = [[1, -sin(shear)], [0, cos(shear)]],
            Zoom = diag(zx, zy) — ImageDataGenerator's ``rotation @ shift @ shear @ zoom`` about the
            image centre, in the same (x, y) coordinates, followed by its horizontal flip."""
            cast = lambda v: ops.cast(v, "float32")  # noqa: E731
            height, width = cast(height), cast(width)
            angle, shear, flip = cast(params["angle"]), cast(params["shear"]), cast(params["flip"])
            zx, zy = cast(params["zx"]), cast(params["zy"])
            shift_x, shift_y = cast(params["tx"]) * width, cast(params["ty"]) * height
            cos, sin = ops.cos(angle), ops.sin(angle)
            shear_xy, shear_yy = -ops.sin(shear), ops.cos(shear)
            # M = R @ Shear @ Zoom @ Flip
            m00 = cos * zx * flip
            m01 = (cos * shear_xy - sin * shear_yy) * zy
            m10 = sin * zx * flip
            m11 = (sin * shear_xy + cos * shear_yy) * zy
            # offset = centre + R @ shift - M @ centre
            c_x, c_y = (width - 1.0) / 2.0, (height - 1.0) / 2.0
            off_x = c_x + cos * shift_x - sin * shift_y - m00 * c_x - m01 * c_y
            off_y = c_y + sin * shift_x + cos * shift_y - m10 * c_x - m11 * c_y
            zeros = ops.zeros_like(m00)
            return ops.stack([m00, m01, off_x, m10, m11, off_y, zeros, zeros], axis=1)

        def call(self, inputs, training=None):
            if not training:
                return inputs
            images = inputs
            unbatched = len(images.shape) == 3
            if unbatched:
                images = ops.expand_dims(images, 0)
            dtype = images.dtype
            shape = ops.shape(images)
            matrices = self.transforms(self.sample_parameters(shape[0]), shape[1], shape[2])
            out = ops.image.affine_transform(ops.cast(images, "float32"), matrices,
                                             interpolation=self.interpolation, fill_mode=self.fill_mode,
                                             fill_value=self.fill_value, data_format="channels_last")
            out = ops.cast(out, dtype)
            return ops.squeeze(out, 0) if unbatched else out

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            config = super().get_config()
            config.update(rotation_range=self.rotation_range, width_shift_range=self.width_shift_range,
                          height_shift_range=self.height_shift_range, shear_range=self.shear_range,
                          zoom_range=list(self.zoom_range), horizontal_flip=self.horizontal_flip,
                          fill_mode=self.fill_mode, interpolation=self.interpolation,
                          fill_value=self.fill_value, seed=self.seed)
            return config

    RandomAffine.__module__ = __name__
    RandomAffine.__qualname__ = "RandomAffine"
    return keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)(RandomAffine)


def register_layers() -> dict[str, type]:
    """Create and register ConvScope's Keras layers (imports TensorFlow; idempotent). Call before
    loading a saved model that contains them. Returns {class name: class}."""
    if not _classes:
        with _class_lock:
            if not _classes:
                _classes["RandomAffine"] = _make_random_affine()
    return dict(_classes)


def __getattr__(name: str):  # PEP 562: ``from engine.data.augment import RandomAffine`` loads TF then
    if name == "RandomAffine":
        return register_layers()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def book_affine(seed: int | None = None, *, interpolation: str = "bilinear", name: str = "book_affine"):
    """The book's ImageDataGenerator recipe as one :class:`RandomAffine` layer (bilinear, as the book's
    generator; see the module doc)."""
    return register_layers()["RandomAffine"](
        rotation_range=BOOK_ROTATION_DEGREES, width_shift_range=BOOK_SHIFT, height_shift_range=BOOK_SHIFT,
        shear_range=BOOK_SHEAR_DEGREES, zoom_range=BOOK_ZOOM, horizontal_flip=True, fill_mode="nearest",
        interpolation=interpolation, seed=seed, name=name)


def build_augmentation(preset: str, seed: int | None = None):
    """A ``keras.Sequential`` named "augmentation" for ``preset`` (see :data:`AUGMENTATION_PRESETS`),
    or None for "none". "book" holds one :class:`RandomAffine` layer named "book_affine"; "mild" holds
    Keras' RandomFlip and RandomTranslation, named flip and translation."""
    if preset not in AUGMENTATION_PRESETS:
        raise InvalidSetting(f"unknown augmentation preset '{preset}'",
                             f"use one of {', '.join(AUGMENTATION_PRESETS)}")
    if preset == "none":
        return None
    layers = _keras().layers

    def seeded(offset: int) -> int | None:
        return None if seed is None else seed + offset

    if preset == "book":
        block = [book_affine(seeded(0))]
    else:
        block = [
            layers.RandomFlip("horizontal", seed=seeded(0), name="flip"),
            layers.RandomTranslation(MILD_SHIFT, MILD_SHIFT, fill_mode="nearest", seed=seeded(2), name="translation"),
        ]
    return _keras().Sequential(block, name="augmentation")


def augmentation_preview(image_uint8: np.ndarray, preset: str, count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """``count`` augmented versions of one ``H x W x 3`` uint8 image, for the GUI's preview grid
    (deterministic in ``seed``). Pass a display-sized image: every copy is processed at its size."""
    image = np.asarray(image_uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidSetting(f"preview image has shape {image.shape}", "pass an H x W x 3 RGB image")
    if count < 1:
        raise InvalidSetting(f"preview count {count}", "ask for at least one image")
    block = build_augmentation(preset, seed=seed)
    if block is None:
        return [image.astype(np.uint8, copy=True) for _ in range(count)]
    batch = np.repeat(image[None].astype(np.float32), count, axis=0)
    augmented = np.asarray(block(batch, training=True))
    return [np.clip(np.rint(one), 0, 255).astype(np.uint8) for one in augmented]
