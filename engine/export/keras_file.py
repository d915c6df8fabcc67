"""``.keras`` export: the model as Keras saves it, loaded back with ConvScope's safe loader.

Augmentation layers stay in the file (Keras runs them only in training); the parity check calls
the reloaded model with ``training=False`` as every ConvScope consumer does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.export.request import ExportRequest


def write(request: ExportRequest) -> Path:
    request.model.save(str(request.artifact))
    return request.artifact


def load(artifact: Path):
    from engine.models.loading import load_keras_file  # noqa: PLC0415

    model = load_keras_file(artifact)

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(model(images, training=False))

    return predict


def usage(card: dict) -> tuple[str, list[str], list[str]]:
    """The runtime's part of the model card's snippet: (import, load lines, lines setting ``scores`` from ``batch``)."""
    return ("import keras", [f'model = keras.saving.load_model("{card["artifact"]}")'],
            ["scores = np.asarray(model(batch, training=False))[0]"])
