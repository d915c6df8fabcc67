"""The model card written beside every export: model_card.json and model_card.md.

It tells whoever runs the file elsewhere what they need and nothing ConvScope-specific: the class
names in output order, the input size and pixel convention (raw RGB 0..255; preprocessing is inside
the model), what the output is, the run's test metrics, the manifest (dataset fingerprint,
versions), the parity figures, and a ten-line snippet for the format's runtime.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import time
from pathlib import Path
from typing import Any

from engine import __version__, atomic

JSON_NAME = "model_card.json"
MD_NAME = "model_card.md"
_PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "ai-edge-litert", "tf2onnx", "onnx", "onnxruntime")


def _final_activation(model) -> str | None:
    """The activation of the model's last layer (looking into a nested head model)."""
    layer = model
    while getattr(layer, "layers", None):
        layer = layer.layers[-1]
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)


def output_description(model, class_names: list[str]) -> dict[str, Any]:
    units = int(model.outputs[0].shape[-1])
    if units == 1:
        return {"kind": "sigmoid", "units": 1,
                "meaning": f"one sigmoid unit: the probability of '{class_names[1]}' "
                           f"('{class_names[0]}' is 1 - p)",
                "decode": "top = int(scores[0] > 0.5)  # index into class_names"}
    activation = _final_activation(model) or "linear"
    meaning = ("softmax: one probability per class, in class_names order" if activation == "softmax"
               else f"{units} {activation} outputs, one per class, in class_names order")
    return {"kind": activation, "units": units, "meaning": meaning,
            "decode": "top = int(scores.argmax())  # index into class_names"}


def versions() -> dict[str, str]:
    found = {"convscope": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def run_facts(run_dir: Path | None) -> tuple[dict | None, dict | None]:
    """(test metrics, manifest) of a run folder, where it has them."""
    if run_dir is None:
        return None, None
    from engine.train import rundir  # noqa: PLC0415

    metrics = rundir.read_json(run_dir / rundir.METRICS)
    manifest = rundir.read_json(run_dir / rundir.MANIFEST)
    test = None
    if isinstance(metrics, dict) and "accuracy" in metrics:
        test = {key: metrics.get(key) for key in ("accuracy", "loss", "count", "data", "model_file")}
    return test, manifest if isinstance(manifest, dict) else None


def snippet(card: dict[str, Any], runtime: tuple[str, list[str], list[str]]) -> str:
    """About ten lines: read one photo as the model wants it, run it, name the class."""
    size = card["input"]["size"]
    import_line, load_lines, run_lines = runtime
    return "\n".join([
        f"import json, numpy as np; {import_line}",
        "from PIL import Image",
        f'class_names = json.load(open("{JSON_NAME}"))["class_names"]',
        *load_lines,
        f'image = Image.open("photo.jpg").convert("RGB").resize(({size}, {size}), Image.BILINEAR)',
        "batch = np.asarray(image, dtype=np.float32)[None]  # raw RGB 0..255, no scaling",
        *run_lines,
        card["output"]["decode"],
        "print(class_names[top], scores)",
    ])


def build(*, fmt, quantize: str, artifact: str, size_bytes: int, loaded, parity: dict, notes: list[str],
          run_dir: Path | None, runtime: tuple[str, list[str], list[str]]) -> dict[str, Any]:
    class_names = list(loaded.class_names)
    test, manifest = run_facts(run_dir)
    card: dict[str, Any] = {
        "format": fmt.name, "format_label": fmt.label, "runtime": fmt.runtime, "quantize": quantize,
        "artifact": artifact, "size_bytes": size_bytes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "source": loaded.source, "model_name": loaded.model.name,
        "class_names": class_names,
        "input": {"shape": [None, loaded.input_size, loaded.input_size, 3], "size": loaded.input_size,
                  "dtype": "float32",
                  "pixels": f"raw RGB 0..255, resized to {loaded.input_size}x{loaded.input_size} (bilinear, "
                            "aspect ratio not kept, as in training); preprocessing is inside the model"},
        "output": output_description(loaded.model, class_names),
        "test_metrics": test, "manifest": manifest, "export_versions": versions(),
        "parity": parity, "notes": list(notes),
    }
    card["usage"] = snippet(card, runtime)
    return card


def markdown(card: dict[str, Any]) -> str:
    parity = card["parity"]
    lines = [
        f"# Model card: {card['model_name']} ({card['format_label']}"
        + (f", {card['quantize']} quantization)" if card["quantize"] != "none" else ")"),
        "",
        f"- Artifact: `{card['artifact'] or '.'}` ({card['size_bytes']:,} bytes), runs with `{card['runtime']}`",
        f"- Exported from: `{card['source']}` on {card['created']}",
        f"- Input: float32 {card['input']['shape']}: {card['input']['pixels']}",
        f"- Output: {card['output']['meaning']}",
        "",
        "## Classes, in output order",
        "",
        *[f"{i}. {name}" for i, name in enumerate(card["class_names"])],
        "",
        "## Checked against the Keras model",
        "",
        f"{'PASSED' if parity['passed'] else 'FAILED'} ({parity['criterion']}) on {parity['images']} images "
        f"of {parity['source']}:",
        "",
        "| max abs diff | mean abs diff | top-1 agreement | Keras accuracy | export accuracy |",
        "|---|---|---|---|---|",
        f"| {parity['max_abs_diff']:.3g} | {parity['mean_abs_diff']:.3g} | {parity['top1_agreement']:.2%} | "
        f"{_percent(parity['keras_accuracy'])} | {_percent(parity['export_accuracy'])} |",
        "",
    ]
    if card["test_metrics"]:
        test = card["test_metrics"]
        lines += ["## The run's test metrics (Keras)", "",
                  f"accuracy {_percent(test.get('accuracy'))}, loss {_number(test.get('loss'))} on "
                  f"{test.get('count')} images of {test.get('data')}", ""]
    if card["notes"]:
        lines += ["## Notes", "", *[f"- {note}" for note in card["notes"]], ""]
    lines += ["## Usage", "", "```python", card["usage"], "```", "",
              "## Versions", "", "```json", json.dumps(card["export_versions"], indent=2), "```", ""]
    if card["manifest"]:
        lines += ["## Training manifest", "", "```json", json.dumps(card["manifest"], indent=2, default=str), "```", ""]
    return "\n".join(lines)


def _percent(value) -> str:
    return "-" if value is None else f"{value:.2%}"


def _number(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def write(folder: Path, card: dict[str, Any]) -> None:
    atomic.write_json(folder / JSON_NAME, card)
    atomic.write_text(folder / MD_NAME, markdown(card))
