"""The export formats ConvScope writes, what each can quantize, and where its code lives (no TensorFlow).

The GUI and the CLI list formats and quantizations from here without importing TensorFlow; the job
(``engine.export.job``) imports a format's module only when it exports to it. A format module
provides ``write(request) -> Path`` (the artifact inside the staging folder), ``load(artifact) ->
predict`` (the artifact in its own runtime: raw RGB 0..255 batch in, the model's outputs out) and
``usage(card)`` (its lines of the model card's usage snippet).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from engine.errors import InvalidSetting, look_up

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")


@dataclass(frozen=True)
class ExportFormat:
    name: str
    label: str
    artifact: str  # file name inside the export folder; "" when the export folder itself is the artifact
    quantizations: tuple[str, ...]
    runtime: str  # what loads the artifact back for the parity check
    module: str

    def implementation(self) -> ModuleType:
        return importlib.import_module(self.module)


FORMATS: dict[str, ExportFormat] = {
    fmt.name: fmt
    for fmt in (
        ExportFormat("savedmodel", "TensorFlow SavedModel", "", ("none",), "tf.saved_model.load",
                     "engine.export.savedmodel"),
        ExportFormat("litert", "LiteRT (TFLite)", "model.tflite", QUANTIZATIONS,
                     "ai_edge_litert.interpreter.Interpreter", "engine.export.litert"),
        ExportFormat("onnx", "ONNX", "model.onnx", QUANTIZATIONS, "onnxruntime.InferenceSession",
                     "engine.export.onnx_file"),
        ExportFormat("keras", "Keras 3 (.keras)", "model.keras", ("none",), "keras.saving.load_model",
                     "engine.export.keras_file"),
    )
}


def format_names() -> list[str]:
    return list(FORMATS)


def get_format(name: str) -> ExportFormat:
    return look_up(FORMATS, name, "export format")


def check_quantization(fmt: ExportFormat, quantize: str) -> None:
    if quantize not in QUANTIZATIONS:
        raise InvalidSetting(f"unknown quantization '{quantize}'", f"choose one of: {', '.join(QUANTIZATIONS)}")
    if quantize not in fmt.quantizations:
        others = [f.name for f in FORMATS.values() if quantize in f.quantizations]
        raise InvalidSetting(f"format '{fmt.name}' has no '{quantize}' quantization (it keeps float32 weights)",
                             f"use --quantize none, or export to {' or '.join(others)}")
