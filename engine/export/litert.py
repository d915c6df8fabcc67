"""LiteRT (TFLite) export: converted from the inference-mode SavedModel, builtin ops only, run with LiteRT.

Converting the SavedModel written by ``engine.export.savedmodel`` works for every model ConvScope
builds (difference 2e-7 on the measured models); Keras's own ``format="litert"`` quietly enables
Select-TF ops, whose files need the Flex delegate that ``ai_edge_litert`` lacks, so this module
converts with builtin ops only and then checks the file's operator table for custom (Flex) ops.
The files are checked in ``ai_edge_litert``'s interpreter, not ``tf.lite.Interpreter`` (deprecated,
warns of its removal). A converted file has a fixed batch of 1: the input is resized for batches.

Quantizations: ``float16`` (weights stored as float16), ``dynamic`` (int8 weights, float
activations), ``int8`` (int8 weights and activations calibrated on a representative set from the
training split; input and output stay float32 so callers feed raw RGB as for every other format).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import atomic
from engine.errors import ExportError
from engine.export import diagnose, savedmodel
from engine.export.request import ExportRequest
from engine.tf_runtime import tf

FORMAT_LABEL = "LiteRT"
_FIX = "replace that layer with builtin Keras layers, or export to savedmodel or keras instead"


def _converter(saved: Path, quantize: str, representative, int8_ops_only: bool):
    t = tf()
    converter = t.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=[savedmodel.ENDPOINT])
    converter.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [t.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [t.float16]
    elif quantize == "int8":
        converter.representative_dataset = lambda: ([batch] for batch in representative())
        converter.target_spec.supported_ops = (
            [t.lite.OpsSet.TFLITE_BUILTINS_INT8] if int8_ops_only
            else [t.lite.OpsSet.TFLITE_BUILTINS_INT8, t.lite.OpsSet.TFLITE_BUILTINS])
    return converter


def _convert(request: ExportRequest, saved: Path) -> bytes:
    try:
        return _converter(saved, request.quantize, request.representative, True).convert()
    except Exception as error:  # noqa: BLE001 - the converter raises ConverterError and plain exceptions
        first = error
    if request.quantize == "int8":
        try:
            data = _converter(saved, request.quantize, request.representative, False).convert()
            request.notes.append("int8: some operations have no int8 kernel and stay in float32")
            return data
        except Exception as error:  # noqa: BLE001
            first = error
    ops = diagnose.tflite_failed_ops(str(first))
    if ops:
        raise diagnose.unexpressible(request.model, FORMAT_LABEL, ops, _FIX) from None
    message = " ".join(str(first).split())[:300]
    raise ExportError(f"{FORMAT_LABEL} conversion failed: {message}",
                      "export without quantization, or to savedmodel or keras instead") from None


def custom_ops(data: bytes) -> list[str]:
    """Custom (Flex / Select-TF) operators the file needs; [] when LiteRT's builtins suffice."""
    from ai_edge_litert import schema_py_generated as schema  # noqa: PLC0415

    model = schema.Model.GetRootAs(data, 0)
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i).CustomCode()
        if code:
            names.append(code.decode("utf-8", "replace"))
    return sorted(set(names))


def write(request: ExportRequest) -> Path:
    saved = savedmodel.write_serving(request.model, request.scratch("savedmodel"), request.input_size)
    data = _convert(request, saved)
    needed = custom_ops(data)
    if needed:
        raise diagnose.unexpressible(request.model, FORMAT_LABEL, {op: op for op in needed}, _FIX)
    atomic.write_bytes(request.artifact, data)
    return request.artifact


def load(artifact: Path):
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415

    interpreter = Interpreter(model_path=str(artifact))
    interpreter.allocate_tensors()  # fails here if the file needed a delegate LiteRT lacks
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]

    def predict(images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        if tuple(interpreter.get_input_details()[0]["shape"]) != images.shape:
            interpreter.resize_tensor_input(source["index"], list(images.shape))
            interpreter.allocate_tensors()
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        return np.array(interpreter.get_tensor(target["index"]))

    return predict


def usage(card: dict) -> tuple[str, list[str], list[str]]:
    """The runtime's part of the model card's snippet: (import, load lines, lines setting ``scores`` from ``batch``)."""
    return ("from ai_edge_litert.interpreter import Interpreter",
            [f'interpreter = Interpreter(model_path="{card["artifact"]}"); interpreter.allocate_tensors()',
             "source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]"],
            ['interpreter.set_tensor(source["index"], batch); interpreter.invoke()',
             'scores = interpreter.get_tensor(target["index"])[0]'])
