"""``convscope bases`` (list the pretrained bases) and ``convscope predict`` (classify images)."""

from __future__ import annotations

import argparse

from engine.commands.common import print_json, say


def register(subparsers) -> None:
    bases = subparsers.add_parser(
        "bases", help="list the pretrained convolutional bases and where their weights come from",
        description="List every pretrained base: label, weights present and their source, default image "
                    "size, the Grad-CAM layer and the layer fine-tuning starts from.",
    )
    bases.add_argument("--json", action="store_true", help="print one JSON document")
    bases.set_defaults(func=run_bases)

    predict = subparsers.add_parser(
        "predict", help="classify images with a model, a run folder or an ImageNet base",
        description="Print the top classes and probabilities of each image. MODEL is a .keras file, a "
                    "run folder written by `convscope train`, or a base with an ImageNet head "
                    "(efficientnet-lite0). ImageNet models see a central crop; trained models see the "
                    "whole image resized, as in training.",
    )
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("images", metavar="IMAGE", nargs="+")
    predict.add_argument("--top", type=int, default=5, metavar="K", help="classes per image (default 5)")
    predict.add_argument("--json", action="store_true", help="print one JSON document")
    predict.add_argument("--trust-model", action="store_true",
                         help="allow a model that contains code (Lambda layers, custom objects); only for "
                              "files from a source you trust")
    predict.set_defaults(func=run_predict)


def bases_table() -> list[dict]:
    from engine.bases.registry import all_bases  # noqa: PLC0415

    rows = []
    for spec in all_bases():
        status = spec.weights_status()
        rows.append({
            "name": spec.name, "label": spec.label, "weights_present": status.present,
            "weights": status.source, "weights_source": spec.weights_source,
            "input_size": spec.input_size, "min_input_size": spec.min_input_size,
            "gradcam_layer": spec.last_conv_layer, "finetune_from": spec.finetune_from,
            "imagenet_head": spec.imagenet_head, "attribution": spec.attribution,
        })
    return rows


def run_bases(args: argparse.Namespace) -> int:
    rows = bases_table()
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        mark = "yes" if row["weights_present"] else "NO"
        say(f"{row['name']}  —  {row['label']}")
        say(f"    weights: {mark}; {row['weights']}")
        say(f"    default size {row['input_size']} px (min {row['min_input_size']}); "
            f"Grad-CAM layer {row['gradcam_layer']}; fine-tune from {row['finetune_from']}")
        if row["attribution"]:
            say(f"    credit: {row['attribution']}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from engine.errors import InvalidSetting  # noqa: PLC0415
    from engine.models.loading import load_model  # noqa: PLC0415
    from engine.predict import predict_images  # noqa: PLC0415

    if args.top < 1:
        raise InvalidSetting(f"--top {args.top} must be at least 1")
    loaded = load_model(args.model, trust=args.trust_model)
    results = predict_images(loaded, args.images, top_k=args.top)
    if args.json:
        print_json({"model": loaded.source, "label": loaded.label, "kind": loaded.kind,
                    "input_size": loaded.input_size, "predictions": [r.to_dict() for r in results]})
        return 0
    for result in results:
        say(result.path)
        for index, name, prob in result.top:
            say(f"  {prob:7.2%}  {name} ({index})")
    return 0
