"""``convscope gradcam``: a heatmap of where a class comes from, through the same route as the Grad-CAM tab.

A thin argument parser over :func:`engine.inspect.explain.explain` (the tab calls it too, so the
same image, model, class, method, target and ``--input`` give the same heatmap in both).
"""

from __future__ import annotations

import argparse

import numpy as np

from engine.commands.common import print_json, say
from engine.commands.inspect import (
    _check_out,
    _json_result,
    _load,
    _model_args,
    _output_args,
    _read_image,
    _sink,
    _write_npy,
    _write_png,
)
from engine.errors import InvalidSetting
from engine.events import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "gradcam", help="where in an image a class comes from (Grad-CAM, Grad-CAM++, Score-CAM, saliency)",
        description="Writes the heatmap in the jet colormap over the image. The default layer is the known "
                    "base's Grad-CAM layer, else the model's last layer with a 4-D output.",
    )
    _model_args(p)
    p.add_argument("image", metavar="IMAGE", nargs="?",
                   help="an image file (JPEG, PNG, ...); not with --test-class")
    p.add_argument("--class", dest="class_", metavar="INDEX|NAME",
                   help="class index or name (default: the predicted class)")
    p.add_argument("--layer", help="feature-map layer path (default: see above)")
    p.add_argument("--method", choices=["gradcam", "gradcam++", "scorecam", "saliency"], default="gradcam")
    p.add_argument("--input", choices=["whole", "predict", "resize"], default="whole",
                   help="whole: the whole photo (ImageNet models: aspect kept, shorter side = input size), as "
                        "the Grad-CAM tab; predict: exactly what `convscope predict` classifies (ImageNet: the "
                        "centre crop); resize: the photo squashed to the model's square input (default whole)")
    p.add_argument("--target", choices=["logit", "probability"], default="logit",
                   help="what is differentiated for a softmax head: the class's pre-softmax score (as the "
                        "Grad-CAM paper) or its probability (default logit)")
    p.add_argument("--output", "--output-index", dest="output", metavar="NAME|INDEX",
                   help="which output of a model with several (its name or index; default the first)")
    p.add_argument("--explain-input", metavar="NAME|INDEX",
                   help="which input of a model with several image inputs IMAGE feeds and the map explains "
                        "(default the first); the others are held at their --image")
    p.add_argument("--image", dest="other_images", action="append", default=[], metavar="NAME=PATH",
                   help="the image of another input of a multi-input model (repeat for each)")
    p.add_argument("--alpha", type=float, default=0.4, help="heatmap opacity in the overlay (default 0.4)")
    p.add_argument("--out", required=True, metavar="PNG|DIR",
                   help="where to write the overlay (with --test-class: a folder for the mean heatmap, the "
                        "gallery and class_explanation.json)")
    p.add_argument("--test-class", metavar="NAME",
                   help="explain every test image of this class of the run MODEL instead of one image: the mean "
                        "heatmap and a gallery sorted by faithfulness, weakest explanation first")
    p.add_argument("--predicted", metavar="NAME",
                   help="with --test-class: only the images the model predicts as NAME (a confusion-matrix cell), "
                        "explained as NAME")
    p.add_argument("--limit", type=int, default=200, metavar="N", help="with --test-class: at most N images")
    p.add_argument("--save-heatmap", metavar="NPY",
                   help="also save the float heatmap (0..1) as .npy, at the size of the image it is drawn over")
    p.add_argument("--score", action="store_true",
                   help="also measure how far to trust the map: deletion/insertion AUCs (RISE), ROAD scores, the "
                        "same for a random map and a centred blob, and a sanity check (Spearman correlation with "
                        "the map after randomising the top layers)")
    p.add_argument("--steps", type=int, default=20, metavar="N", help="steps of each --score curve (default 20)")
    _output_args(p, "print the result as JSON")
    p.set_defaults(func=run_gradcam)


def run_gradcam(args: argparse.Namespace) -> int:
    if args.test_class is not None:
        if args.image is not None:
            raise InvalidSetting(f"give either an IMAGE or --test-class, not both ({args.image})",
                                 "--test-class explains the run's own test images")
        return run_test_class(args)
    if args.image is None:
        raise InvalidSetting("no IMAGE given", "name an image file, or a class of a run with --test-class NAME")
    if args.predicted is not None:
        raise InvalidSetting("--predicted goes with --test-class", "e.g. --test-class coat --predicted pullover")
    from engine.inspect.cam import overlay  # noqa: PLC0415
    from engine.inspect.explain import ExplainRequest, explain  # noqa: PLC0415

    out = _check_out(args.out, ".png", "--out")
    heat_out = _check_out(args.save_heatmap, ".npy", "--save-heatmap") if args.save_heatmap else None
    if not 0.0 <= args.alpha <= 1.0:
        raise InvalidSetting(f"--alpha {args.alpha} is out of range", "use a value between 0 and 1")
    ExplainRequest(method=args.method, input=args.input, target=args.target).validate()
    config = None
    if args.score:
        from engine.inspect.faithfulness import FaithfulnessConfig  # noqa: PLC0415

        config = FaithfulnessConfig(steps=args.steps)
        config.validate()
    total = 4 if args.score else 3
    sink = _sink(args, args.method)
    trust = None
    try:
        sink(Progress(done=0, total=total, message=f"loading {args.model}"))
        loaded = _load(args)
        image = _read_image(args.image)
        request, others = _multi_io(args, loaded)
        sink(Progress(done=1, total=total, message=f"computing {args.method}"))
        result = explain(loaded, image, request, others=others)
        if config is not None:
            from engine.inspect.explain import assess  # noqa: PLC0415

            sink(Progress(done=2, total=total, message="scoring the map (faithfulness curves, sanity check)"))
            trust = assess(loaded, result, config)
        sink(Progress(done=total - 1, total=total, message=f"writing {out}"))
        _write_png(out, overlay(result.shown, result.heatmap, alpha=args.alpha))
        if heat_out is not None:
            _write_npy(heat_out, result.heatmap.astype(np.float32))
        sink(Progress(done=total, total=total, message="done"))
    finally:
        getattr(sink, "close", lambda: None)()
    data = {**result.to_dict(), "model": loaded.label, "image": args.image, "out": str(out),
            "heatmap": str(heat_out) if heat_out else None,
            "faithfulness": trust.to_dict() if trust is not None else None}
    if args.json_events:
        _json_result(data)
    elif args.json:
        print_json(data)
    else:
        cam = result.cam
        say(f"{cam.method} of class {cam.class_index} ({result.class_name}), probability {cam.score:.3g}, "
            f"at layer {cam.layer}, target {cam.target}")
        say(f"Input: {result.input_text}")
        for line in trust.lines() if trust is not None else []:
            say(line)
        say(f"Wrote {out}" + (f" and {heat_out}" if heat_out else ""))
    return 0


def _multi_io(args, loaded):
    """The request for the chosen output and input, and the other inputs' images by index."""
    from engine.inspect.explain import ExplainRequest  # noqa: PLC0415
    from engine.inspect.layers import resolve_input, resolve_output  # noqa: PLC0415

    output_index = resolve_output(loaded.model, args.output)
    explain_input = resolve_input(loaded.model, args.explain_input)
    others = {}
    for pair in args.other_images:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise InvalidSetting(f"--image {pair}: expected NAME=PATH", "e.g. --image sketch=sketch.png")
        index = resolve_input(loaded.model, name)
        if index == explain_input:
            raise InvalidSetting(f"--image {pair}: '{name}' is the input being explained",
                                 "give its image as IMAGE, and --image for the other inputs")
        others[index] = _read_image(path)
    request = ExplainRequest(method=args.method, class_=args.class_, layer=args.layer, input=args.input,
                             target=args.target, output_index=output_index, explain_input=explain_input)
    return request, others


def run_test_class(args: argparse.Namespace) -> int:
    from engine.inspect.class_explain import ClassExplainConfig, explain_test_class, write_class_explanation  # noqa: PLC0415

    config = ClassExplainConfig(run=args.model, test_class=args.test_class, predicted=args.predicted,
                                method=args.method, layer=args.layer, target=args.target,
                                steps=min(args.steps, 100), limit=args.limit)
    config.validate()
    sink = _sink(args, args.method)
    try:
        result = explain_test_class(config, sink)
        files = write_class_explanation(result, args.out)
    finally:
        getattr(sink, "close", lambda: None)()
    data = {**result.to_dict(), "files": {key: str(path) for key, path in files.items()}}
    if args.json_events:
        _json_result(data)
    elif args.json:
        print_json(data)
    else:
        cell = f" predicted as {result.predicted}" if result.predicted else ""
        say(f"{result.method} of '{result.explained_class}' over {len(result.items)} test image(s) of "
            f"'{result.test_class}'{cell}")
        say("Weakest explanations first (faithfulness = insertion AUC - deletion AUC):")
        for item in result.items[:5]:
            say(f"  {item.faithfulness:+.3f}  p {item.probability:.2f}  {item.path}")
        say(f"Wrote {files['mean_overlay']}, {files['gallery']}, {files['summary']}")
    return 0
