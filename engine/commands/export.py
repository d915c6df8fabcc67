"""CLI command ``convscope export``: a model to SavedModel, LiteRT, ONNX or .keras, checked against Keras."""

from __future__ import annotations

import argparse

from engine.commands.common import cancel_on_interrupt, human_sink, print_json, say
from engine.export.registry import FORMATS, QUANTIZATIONS


def _cmd_export(args: argparse.Namespace) -> int:
    from engine.export.job import ExportConfig, run  # noqa: PLC0415

    config = ExportConfig(model=args.model, format=args.format, out=args.out, quantize=args.quantize,
                          force=args.force, images=args.images, max_images=args.max_images,
                          max_accuracy_drop=args.max_accuracy_drop, trust=args.trust_model)
    sink = (lambda event: None) if args.json else human_sink
    with cancel_on_interrupt() as token:
        result = run(config, sink, token)
    if args.json:
        print_json(result.to_dict())
        return 0
    parity = result.parity
    say(f"{result.format} export written to {result.path} ({result.size_bytes:,} bytes)")
    say(f"checked on {parity['images']} images of {parity['source']}: max abs diff {parity['max_abs_diff']:.3g}, "
        f"top-1 agreement {parity['top1_agreement']:.2%}"
        + (f", accuracy {parity['export_accuracy']:.2%} (Keras {parity['keras_accuracy']:.2%})"
           if parity["keras_accuracy"] is not None else ""))
    say(f"model card: {result.card}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a model to SavedModel, LiteRT, ONNX or .keras, checked against the Keras model",
        description="Export a model (run folder, .keras file or base name) into a new folder holding the artifact "
                    "and its model card (model_card.json, model_card.md). The artifact is loaded back in its own "
                    "runtime and compared with the Keras model on the run's test images (or --images) before the "
                    "export is reported done; a failed check keeps the folder as OUT.failed and exits non-zero. "
                    "Formats: " + "; ".join(f"{f.name}: {f.label}" for f in FORMATS.values()) + ".",
    )
    p.add_argument("model", metavar="MODEL", help="run folder, .keras file or registry base name")
    p.add_argument("--format", required=True, choices=list(FORMATS), help="what to export to")
    p.add_argument("--quantize", default="none", choices=QUANTIZATIONS,
                   help="litert and onnx only: float16, dynamic (int8 weights) or int8 (weights and activations, "
                        "calibrated on the training split); default none")
    p.add_argument("--out", required=True, metavar="PATH", help="the export folder to create")
    p.add_argument("--force", action="store_true", help="replace an existing export folder (only once the new one "
                                                        "has passed its check)")
    p.add_argument("--images", metavar="FOLDER", help="images to check the export on (class folders named like "
                                                      "the model's classes also give accuracy); default: the "
                                                      "run's test split")
    p.add_argument("--max-images", type=int, metavar="N", help="check on at most N of those images")
    p.add_argument("--max-accuracy-drop", type=float, default=0.01, metavar="F",
                   help="quantized exports: accepted accuracy loss against Keras (default 0.01 = 1 point)")
    p.add_argument("--trust-model", action="store_true", help="load a model that needs arbitrary code (Lambda "
                                                              "layers, custom objects): only if you trust its maker")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_export)
