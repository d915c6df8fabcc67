"""What the Grad-CAM tab says in words and writes to disk: readable small probabilities, the panel's
lines (the input, the map's coarseness, the centre-crop answer in plain words), the overlay's file
name and its caption strip. No Qt: pure functions the tab and its tests call."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np

COARSE_CELLS = 4  # a map this many cells wide or fewer can only point at a region, not a detail
CAPTION_WIDTH = 420  # a small image gets a wider strip, so the caption is not cut
WEAK_CLASS = 0.05  # below this probability the methods often disagree: say so


def format_probability(p: float) -> str:
    """12.8 %, 0.4 %, 0.007 %, < 0.0001 % — never a misleading "0.0 %" for a class the model barely
    predicts."""
    if p >= 0.001:
        return f"{p:.1%}"
    if p >= 1e-6:
        return f"{p * 100:.1g} %".replace("e-0", "e-")
    return "< 0.0001 %"


def coarse_map_note(cells: tuple[int, int], layer: str, finer_layer: str | None) -> str:
    """A warning when the layer's feature map is too small for the heatmap to show detail."""
    height, width = cells
    if max(height, width) > COARSE_CELLS:
        return ""
    note = (f"⚠ Layer {layer} sees the image as {height}×{width} cells: the heatmap can only say which "
            "part of the picture holds the evidence, not what in it.")
    if finer_layer:
        note += f" For finer detail choose an earlier layer, e.g. {finer_layer}."
    return note


def explanation_lines(explained, method_label: str, cells: tuple[int, int] | None = None,
                      finer_layer: str | None = None) -> list[str]:
    """The result panel: class and probability, the input, the map (``cells``: the layer's feature
    map at the model's size, for the coarseness note), and — for ImageNet models — the
    centre-crop answer explained in plain words rather than as a second, unexplained number."""
    cam = explained.cam
    height, width = explained.shown.shape[:2]
    drawn_over = f"the full {width}×{height} photo" if explained.whole_photo else f"the model's {width}×{height} input"
    lines = [f"<b>{html.escape(explained.class_name or 'class')}</b> (#{cam.class_index}): probability "
             f"{html.escape(format_probability(cam.score))}",
             f"Input: {explained.input_text}; the prediction list and the map both come from it.",
             f"Heatmap: {method_label} at layer {cam.layer}, drawn over {drawn_over}."]
    note = coarse_map_note(cells, cam.layer, finer_layer) if cells else ""
    if note:
        lines.append(note)
    if cam.score < WEAK_CLASS:
        lines.append("The model gives this class little weight: maps of such a class often differ between "
                     "methods. “Can I trust this map?” below scores this one.")
    if explained.crop_top is not None:
        size = min(explained.input_array.shape[:2])
        lines.append(f"<i>Shown only the {size}×{size} centre crop — the square in the middle of the photo, "
                     f"what the ImageNet benchmark and convscope predict use — the model answers {explained.crop_top[1]} "
                     f"{html.escape(format_probability(explained.crop_top[2]))}. The two numbers differ because the model sees "
                     "different parts of the photo; choose “As convscope predict” to explain that square.</i>")
    return lines


def overlay_file_name(image_path: str, method: str, class_name: str) -> str:
    """``<image>_<method>_<class>.png`` with only safe characters."""
    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "x"

    return f"{safe(Path(image_path).stem or 'image')}_{safe(method)}_{safe(class_name)}.png"


def with_caption(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` with a white strip below it carrying ``text`` (one or more lines)."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    font = ImageFont.load_default()
    lines = text.splitlines() or [""]
    line_height = 14
    height, width = image.shape[:2]
    canvas = Image.new("RGB", (max(width, CAPTION_WIDTH), height + 8 + line_height * len(lines)), "white")
    canvas.paste(Image.fromarray(np.asarray(image, np.uint8)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(lines):
        draw.text((6, height + 4 + index * line_height), line, fill=(20, 20, 20), font=font)
    return np.asarray(canvas)
