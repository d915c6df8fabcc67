"""``convscope layers | activations | filters``: look inside a model from the command line (``gradcam``: :mod:`engine.commands.explain`)."""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from engine import atomic
from engine.commands.common import json_event_sink, print_json, say
from engine.errors import IntrospectionError, InvalidSetting
from engine.events import Event, PartialResult, Progress, Status

_MODEL_HELP = "a .keras file, a run folder, or an ImageNet base name (efficientnet-lite0)"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "layers", help="the layer tree of a model with output shapes (nested bases expanded)",
        description="List every layer with its path (nested bases expanded, e.g. efficientnet_lite0/top_activation), "
                    "class, output shape and parameter count. Paths are what --layer takes elsewhere.",
    )
    _model_args(p)
    p.add_argument("--json", action="store_true", help="print the layers as JSON")
    p.set_defaults(func=run_layers)

    p = subparsers.add_parser(
        "activations", help="every channel of layers' feature maps for an image, as grid PNGs (one pass)",
        description="One forward pass for all the layers asked for; each channel standardised as in the book "
                    "(x64 + 128), all channels shown. One --layer with --out FILE.png writes that file; "
                    "otherwise --out is a folder that gets one LAYER.png per layer ('/' in paths becomes '__').",
    )
    _model_args(p)
    p.add_argument("image", metavar="IMAGE", help="an image file (JPEG, PNG, ...)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--layer", action="append", metavar="L",
                       help="layer path (see `convscope layers MODEL`); repeat for more layers")
    which.add_argument("--all", action="store_true",
                       help="every layer with a feature map (height x width x channels), nested bases included")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for the grids (or FILE.png with a single --layer)")
    p.add_argument("--images-per-row", type=int, default=16, metavar="N", help="channels per row (default 16)")
    p.add_argument("--json", action="store_true", help="print statistics as JSON")
    p.set_defaults(func=run_activations)

    p = subparsers.add_parser(
        "filters", help="filter patterns of a layer by gradient ascent, as a gallery PNG",
        description="The book's recipe (grey noise, 40 steps of 1.0, gradient / RMS) for many filters at once.",
    )
    _model_args(p)
    p.add_argument("--layer", required=True, help="convolution layer path")
    p.add_argument("--first", type=int, default=0, metavar="N", help="first filter (default 0)")
    p.add_argument("--count", type=int, default=64, metavar="N", help="how many filters (default 64, the book's 8x8)")
    p.add_argument("--steps", type=int, default=40, metavar="N", help="gradient-ascent steps (default 40)")
    p.add_argument("--step-size", type=float, default=1.0, help="step size (default 1.0)")
    p.add_argument("--size", type=int, default=None, metavar="PX",
                   help="image size (default: the model's input size, or 150 for a free input size)")
    p.add_argument("--seed", type=int, default=0, help="seed of the start noise (default 0)")
    p.add_argument("--precision", choices=["float32", "bfloat16", "auto"], default="float32",
                   help="bfloat16 is several times faster on CPUs with AMX/AVX512-BF16; auto picks it only "
                        "there (default float32: the same patterns on every machine)")
    p.add_argument("--batch-size", type=int, default=16, metavar="N", help="filters optimised together (default 16)")
    p.add_argument("--out", required=True, metavar="PNG", help="where to write the gallery")
    _output_args(p, "print a JSON summary")
    p.set_defaults(func=run_filters)


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help=_MODEL_HELP)
    parser.add_argument("--trust-model", action="store_true",
                        help="allow model files that run their own code (Lambda layers, custom classes)")


def _output_args(parser: argparse.ArgumentParser, json_help: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help=json_help)
    group.add_argument("--json-events", action="store_true",
                       help="print one JSON event per line (progress, each finished piece, then the result "
                            "as {\"event\": \"Result\", ...}) instead of progress text on stderr")


# ----------------------------------------------------------------------------------------------
# progress


def json_events(event: Event) -> None:
    """``--json-events``: like :func:`json_event_sink`, but a PartialResult's array is described
    (shape, dtype), not printed."""
    value = getattr(event, "value", None)
    if isinstance(event, PartialResult) and hasattr(value, "shape"):
        event = dataclasses.replace(event, value={"shape": list(value.shape), "dtype": str(value.dtype)})
    json_event_sink(event)


def _json_result(data: dict) -> None:
    out = sys.stdout
    if out is not None:
        out.write(json.dumps({"event": "Result", **data}, default=str) + "\n")
        out.flush()


class StderrProgress:
    """A short human progress line on stderr: rewritten in place on a terminal, otherwise one line
    per tenth of the job. Does nothing where there is no stderr (a windowed build)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._shown = -1
        self._open = False
        self._began = time.monotonic()

    def __call__(self, event: Event) -> None:
        err = sys.stderr
        if err is None:
            return
        try:
            tty = err.isatty()
        except (AttributeError, ValueError):
            tty = False
        if isinstance(event, Status):
            self._write(err, f"{self.label}: {event.message}", tty, final=True)
        elif isinstance(event, Progress) and event.total:
            tenth = event.done * 10 // event.total
            if not tty and tenth == self._shown and event.done != event.total:
                return
            self._shown = tenth
            elapsed = time.monotonic() - self._began
            text = f"{self.label}: {event.done}/{event.total} ({event.done / event.total:.0%}, {elapsed:.0f} s)"
            if event.message:
                text += f" {event.message}"
            self._write(err, text, tty, final=event.done == event.total)

    def _write(self, err, text: str, tty: bool, final: bool) -> None:
        try:
            if tty:
                err.write("\r" + text[:100].ljust(100 if self._open else 0) + ("\n" if final else ""))
                self._open = not final
            else:
                err.write(text + "\n")
            err.flush()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        if self._open and sys.stderr is not None:
            try:
                sys.stderr.write("\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            self._open = False


def _sink(args, label: str):
    return json_events if args.json_events else StderrProgress(label)


# ----------------------------------------------------------------------------------------------
# helpers


def _load(args):
    from engine.models.loading import load_model  # noqa: PLC0415

    return load_model(args.model, trust=args.trust_model)


def _read_image(path: str) -> np.ndarray:
    from engine.data.images import read_image_file  # noqa: PLC0415

    return read_image_file(path)


def _model_image(loaded, image: np.ndarray) -> np.ndarray:
    """The image as training saw it: resized (bilinear, antialiased) to the model's input size."""
    if not loaded.input_size:
        return image
    from engine.data.images import resize_rgb  # noqa: PLC0415

    return resize_rgb(image, loaded.input_size)


def _check_out(path: str, suffix: str, option: str) -> Path:
    out = Path(path)
    if out.suffix.lower() != suffix:
        raise InvalidSetting(f"{option} {path}: the file name must end in {suffix}", f"e.g. {out.stem}{suffix}")
    return out


def _write_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image  # noqa: PLC0415

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    atomic.write_bytes(path, buffer.getvalue())


def _write_npy(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic.write_bytes(path, buffer.getvalue())


def _shape_text(shape) -> str:
    return "?" if shape is None else "(" + ", ".join("None" if s is None else str(s) for s in shape) + ")"


# ----------------------------------------------------------------------------------------------
# commands


def run_layers(args: argparse.Namespace) -> int:
    from engine.inspect.cam import default_cam_layer  # noqa: PLC0415
    from engine.inspect.layers import list_layers  # noqa: PLC0415

    loaded = _load(args)
    infos = list_layers(loaded.model)
    try:
        cam_layer = default_cam_layer(loaded.model)
    except IntrospectionError:
        cam_layer = None
    if args.json:
        print_json({"model": loaded.label, "gradcam_layer": cam_layer, "layers": [i.to_dict() for i in infos]})
        return 0
    say(f"{loaded.label}: {len(infos)} layers, {loaded.model.count_params():,} parameters")
    width = max([len("  " * i.depth + i.path.split("/")[-1]) for i in infos] + [10])
    say(f"  {'layer':<{width}}  {'class':<24} {'output shape':<22} {'params':>10}")
    for info in infos:
        name = "  " * info.depth + info.path.split("/")[-1]
        mark = "  <- Grad-CAM layer" if info.path == cam_layer else ""
        say(f"  {name:<{width}}  {info.class_name:<24} {_shape_text(info.output_shape):<22} {info.params:>10,}{mark}")
    say("Address a nested layer by its path, e.g. --layer " + _nested_example(infos, cam_layer))
    return 0


def _nested_example(infos, cam_layer: str | None) -> str:
    """A nested layer path to show as an example: the base's Grad-CAM layer or a convolution inside
    a nested model (the first nested layer may be the augmentation block's)."""
    if cam_layer and "/" in cam_layer:
        return cam_layer
    nested = [i for i in infos if "/" in i.path]
    return next((i.path for i in nested if i.is_conv), nested[0].path if nested else
                (infos[-1].path if infos else "NAME"))


def _activation_layers(model, args: argparse.Namespace) -> list[str]:
    from engine.inspect.layers import canonical_path, list_layers  # noqa: PLC0415

    if args.all:
        return [info.path for info in list_layers(model)
                if info.is_spatial and not info.is_model and info.class_name != "InputLayer"]
    return list(dict.fromkeys(canonical_path(model, layer) for layer in args.layer))


def run_activations(args: argparse.Namespace) -> int:
    from engine.inspect.activations import channel_grid, channel_stats, compute_activations  # noqa: PLC0415

    single_file = args.layer is not None and len(args.layer) == 1 and Path(args.out).suffix.lower() == ".png"
    if args.images_per_row < 1:
        raise InvalidSetting("--images-per-row must be at least 1")
    if not single_file and (Path(args.out).is_file() or Path(args.out).suffix.lower() == ".png"):
        raise InvalidSetting(f"--out {args.out} names a file", "give a folder for several layers' grids")
    loaded = _load(args)
    image = _model_image(loaded, _read_image(args.image))
    paths = _activation_layers(loaded.model, args)
    if not paths:
        raise InvalidSetting(f"{loaded.label} has no layer with a feature map", "check `convscope layers MODEL`")
    activations = compute_activations(loaded.model, image, paths)  # one forward pass for all of them
    rows = []
    for path in paths:
        out = Path(args.out) if single_file else Path(args.out) / (path.replace("/", "__") + ".png")
        _write_png(out, channel_grid(activations[path], images_per_row=args.images_per_row))
        rows.append({"layer": path, "out": str(out), **channel_stats(activations[path])})
    if args.json:
        print_json(rows[0] if single_file else {"layers": rows})
        return 0
    for stats in rows:
        say(f"{stats['layer']}: {stats['shape']} — mean {stats['mean']:.4g}, max {stats['max']:.4g}, "
            f"{stats['zero_channels']} of {stats['channels']} channels all zero ({stats['zero_fraction']:.0%})")
    say(f"Wrote {rows[0]['out']}" if single_file else f"Wrote {len(rows)} grids to {args.out}")
    return 0


def run_filters(args: argparse.Namespace) -> int:
    from engine.inspect.filters import FilterConfig, generate_patterns  # noqa: PLC0415

    out = _check_out(args.out, ".png", "--out")
    config = FilterConfig(layer=args.layer, first=args.first, count=args.count, steps=args.steps,
                          step_size=args.step_size, image_size=args.size, seed=args.seed,
                          batch_size=args.batch_size, precision=args.precision)
    config.validate()
    sink = _sink(args, "filters")
    sink(Status(f"loading {args.model}"))
    loaded = _load(args)
    try:
        result = generate_patterns(loaded.model, config, sink)
    finally:
        getattr(sink, "close", lambda: None)()
    _write_png(out, result.gallery)
    if args.json_events:
        _json_result({**result.to_dict(), "out": str(out)})
    elif args.json:
        print_json({**result.to_dict(), "out": str(out)})
    else:
        gain = float(np.median(result.final_activation - result.start_activation))
        say(f"{result.layer}: {len(result.filter_indices)} filter patterns "
            f"({result.filter_indices[0]}–{result.filter_indices[-1]}), median activation gain {gain:.4g}")
        say(f"Wrote {out}")
    return 0
