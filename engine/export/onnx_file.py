"""ONNX export: the inference-mode SavedModel converted by tf2onnx (opset 17), run with onnxruntime.

Keras's ``model.export(format="onnx")`` fails for models with augmentation and writes a broken file
for any model with a ``Normalization`` layer (its constants become missing graph inputs), which the
VGG-family bases use. tf2onnx from the ``serve`` signature of ``engine.export.savedmodel`` works
(difference 1.8e-7 on the measured models). tf2onnx logs, rather than raises, ops it cannot convert
and leaves them in the graph: the graph is checked against ONNX's operator schemas afterwards.

Quantizations (onnxruntime's tools): ``float16`` (weights and arithmetic in float16, float32 input
and output kept), ``dynamic`` (int8 weights), ``int8`` (static QDQ quantization calibrated on a
representative set from the training split).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine import atomic
from engine.errors import ExportError
from engine.export import diagnose, savedmodel
from engine.export.request import ExportRequest

FORMAT_LABEL = "ONNX"
OPSET = 17
_FIX = "replace that layer with builtin Keras layers, or export to savedmodel, litert or keras instead"


def _convert(request: ExportRequest, saved: Path):
    import tf2onnx  # noqa: PLC0415

    for name in ("tf2onnx", "tf2onnx.tf_loader", "tf2onnx.tfonnx"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # unsupported ops are reported below instead
    graph_def, inputs, outputs = tf2onnx.tf_loader.from_saved_model(
        str(saved), None, None, tag="serve", signatures=[savedmodel.ENDPOINT])
    model_proto, _ = tf2onnx.convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs,
                                                    opset=OPSET)
    return model_proto


def _unknown_ops(model_proto) -> dict[str, str]:
    import onnx  # noqa: PLC0415

    unknown: dict[str, str] = {}
    for node in model_proto.graph.node:
        if not onnx.defs.has(node.op_type, node.domain or ""):
            unknown.setdefault(node.op_type, node.name)
    return unknown


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over the representative batches."""

    def __init__(self, input_name: str, batches) -> None:
        self._items = ({input_name: batch} for batch in batches())

    def get_next(self):
        return next(self._items, None)


def _quantize(request: ExportRequest, plain: Path, input_name: str) -> bytes:
    quantized = request.scratch("quantized") / "model.onnx"
    logging.disable(logging.WARNING)  # onnxruntime's "consider pre-processing" notices go to the root logger
    try:
        _run_quantizer(request, plain, quantized, input_name)
    finally:
        logging.disable(logging.NOTSET)
    return quantized.read_bytes()


def _run_quantizer(request: ExportRequest, plain: Path, quantized: Path, input_name: str) -> None:
    import onnx  # noqa: PLC0415
    from onnxruntime import quantization  # noqa: PLC0415

    if request.quantize == "dynamic":
        quantization.quantize_dynamic(str(plain), str(quantized), weight_type=quantization.QuantType.QInt8)
    elif request.quantize == "int8":
        quantization.quantize_static(str(plain), str(quantized), _Calibration(input_name, request.representative),
                                     quant_format=quantization.QuantFormat.QDQ,
                                     activation_type=quantization.QuantType.QInt8,
                                     weight_type=quantization.QuantType.QInt8)
    else:  # float16
        from onnxruntime.transformers.float16 import convert_float_to_float16  # noqa: PLC0415

        onnx.save(convert_float_to_float16(onnx.load(str(plain)), keep_io_types=True), str(quantized))


def write(request: ExportRequest) -> Path:
    saved = savedmodel.write_serving(request.model, request.scratch("savedmodel"), request.input_size)
    try:
        model_proto = _convert(request, saved)
    except Exception as error:  # noqa: BLE001 - tf2onnx raises many types; each becomes one clear line
        message = " ".join(str(error).split())[:300]
        raise ExportError(f"{FORMAT_LABEL} conversion failed: {type(error).__name__}: {message}",
                          "export to savedmodel, litert or keras instead") from None
    unknown = _unknown_ops(model_proto)
    if unknown:
        raise diagnose.unexpressible(request.model, FORMAT_LABEL, unknown, _FIX)
    data = model_proto.SerializeToString()
    if request.quantize != "none":
        plain = request.scratch("plain") / "model.onnx"
        plain.write_bytes(data)
        data = _quantize(request, plain, model_proto.graph.input[0].name)
    atomic.write_bytes(request.artifact, data)
    return request.artifact


def load(artifact: Path):
    import onnxruntime  # noqa: PLC0415

    session = onnxruntime.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(images: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {name: np.ascontiguousarray(images, dtype=np.float32)})[0])

    return predict


def usage(card: dict) -> tuple[str, list[str], list[str]]:
    """The runtime's part of the model card's snippet: (import, load lines, lines setting ``scores`` from ``batch``)."""
    return ("import onnxruntime", [f'session = onnxruntime.InferenceSession("{card["artifact"]}")'],
            ["scores = session.run(None, {session.get_inputs()[0].name: batch})[0][0]"])
