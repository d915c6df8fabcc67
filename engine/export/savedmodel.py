"""SavedModel export: one ``serve`` endpoint that calls the model with ``training=False``.

Keras's ``model.export(format="tf_saved_model")`` traces the model without ``training=False``: a
model with augmentation layers exported that way augments at serving time (outputs off by
7e-3..1.6e-2, two identical calls differ; measured with Keras 3.15.1). An ``ExportArchive``
endpoint that passes ``training=False`` gives a difference of 0, and it is also the SavedModel the
LiteRT and ONNX converters start from (the random ops of augmentation are then absent, so neither
needs Flex / unsupported ops).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.export.request import ExportRequest
from engine.tf_runtime import keras, tf

ENDPOINT = "serve"
INPUT_NAME = "image"


def write_serving(model, folder: Path, input_size: int) -> Path:
    """Write ``model`` as a SavedModel whose ``serve`` signature runs it in inference mode."""
    t, k = tf(), keras()
    archive = k.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=ENDPOINT,
        fn=lambda images: model(images, training=False),
        input_signature=[t.TensorSpec((None, input_size, input_size, 3), t.float32, name=INPUT_NAME)],
    )
    archive.write_out(str(folder), verbose=False)
    return folder


def write(request: ExportRequest) -> Path:
    return write_serving(request.model, request.artifact, request.input_size)


def load(artifact: Path):
    t = tf()
    loaded = t.saved_model.load(str(artifact))
    serve = getattr(loaded, ENDPOINT)

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(serve(t.constant(images, dtype=t.float32)))

    predict.keep_alive = loaded  # the restored object must outlive the function
    return predict


def usage(card: dict) -> tuple[str, list[str], list[str]]:
    """The runtime's part of the model card's snippet: (import, load lines, lines setting ``scores`` from ``batch``)."""
    return ("import tensorflow as tf", ['model = tf.saved_model.load(".")  # this export folder'],
            [f"scores = model.{ENDPOINT}(tf.constant(batch)).numpy()[0]"])
