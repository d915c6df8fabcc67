"""The study's report: one self-contained HTML file (no network, no external fonts, scripts or images).

Sections: the table per rung (accuracy with 95% CI, per-class F1, loss, epochs, time, trained
parameters), the paired McNemar tests with their verdicts, the book's five numbers beside the
measured ones and a paragraph generated from the measured numbers, validation curves of every rung
overlaid (inline SVG), the confusion matrices side by side, and the 8 test images the rungs disagree
on most with each rung's answer and Grad-CAM (images embedded as data URIs).
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

from engine import atomic
from engine.train import rundir

REPORT = "report.html"
# DLwP chapter 5, cats vs dogs (2,000 training images): the book's own test accuracies per rung
BOOK = {"scratch": 0.71, "scratch+aug": 0.82, "features": 0.90, "features-augmented": 0.96, "finetune": 0.97}
COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1")
STEP_MEANING = {
    "scratch+aug": "augmentation (with dropout) against the plain convnet",
    "features": "a pretrained base's cached features against the convnet trained from scratch with augmentation",
    "features-augmented": "the frozen base trained end to end with augmentation against cached features",
    "finetune": "fine-tuning the top of the base against the frozen base",
}


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _finished(study: dict) -> list[dict]:
    return [r for r in study["rungs"] if r["status"] == "finished"]


def narrative(study: dict) -> list[str]:
    """Sentences generated from the measured numbers: where the ladder follows the book's story."""
    done = {r["name"]: r for r in _finished(study)}
    tests = {(c["a"], c["b"]): c for c in study.get("comparisons", []) if c["kind"] == "previous"}
    names = [r["name"] for r in study["rungs"]]
    out = []
    for previous, current in zip(names, names[1:]):
        if previous not in done or current not in done:
            continue
        a, b = done[current]["test_accuracy"], done[previous]["test_accuracy"]
        book = BOOK[current] - BOOK[previous]
        test = tests.get((current, previous))
        verdict = test["verdict"] if test else "not compared"
        p_text = f"McNemar p = {test['p_value']:.3g}" if test else ""
        delta = 100 * (a - b)
        if verdict == "better":
            agree = "as in the book" if book > 0 else "unlike the book, where it did not help"
        elif verdict == "worse":
            agree = f"unlike the book's {100 * book:+.0f} points"
        else:
            agree = (f"the book gained {100 * book:+.0f} points here; on this test set the difference is not "
                     f"distinguishable")
        out.append(f"{STEP_MEANING[current].capitalize()}: {b:.3f} → {a:.3f} ({delta:+.1f} points, {p_text}, "
                   f"{verdict}) — {agree}.")
    if done:
        best = max(done.values(), key=lambda r: r["test_accuracy"])
        out.append(f"Best rung: {best['name']} at {best['test_accuracy']:.3f} (95% CI {best['ci95'][0]:.3f}–"
                   f"{best['ci95'][1]:.3f}) on {best['test_images']} test images; the book's best was "
                   f"{BOOK['finetune']:.2f} on cats vs dogs.")
    return out


def tta_cell(rung: dict[str, Any]) -> str:
    """The test-time-augmentation figure of a rung: accuracy, interval and McNemar p against the
    rung's own plain predictions ("off" when the study ran with --no-tta)."""
    tta = rung.get("tta")
    if not tta:
        return "off"
    return (f"{tta['test_accuracy']:.3f} ({tta['ci95'][0]:.3f}–{tta['ci95'][1]:.3f}; "
            f"p {tta['against_plain']['p_value']:.2g})")


def _table(study: dict) -> str:
    rows = []
    for r in study["rungs"]:
        book = f"{BOOK[r['name']]:.2f}"
        if r["status"] != "finished":
            rows.append(f"<tr><td>{r['index']}</td><td>{_esc(r['name'])}</td><td colspan=8>{_esc(r['status'])} "
                        f"{_esc(r.get('reason', ''))}</td><td>{book}</td></tr>")
            continue
        f1 = "<br>".join(f"{_esc(k)} {v:.3f}" for k, v in r["per_class_f1"].items())
        rows.append(
            f"<tr><td>{r['index']}</td><td>{_esc(r['name'])}</td><td><b>{r['test_accuracy']:.3f}</b></td>"
            f"<td>{r['ci95'][0]:.3f}–{r['ci95'][1]:.3f}</td><td>{_esc(tta_cell(r))}</td><td>{f1}</td>"
            f"<td>{r['test_loss']:.3f}</td>"
            f"<td>{r['epochs']}</td><td>{r.get('train_seconds', 0):.0f}</td><td>{r['trained_parameters']:,}</td>"
            f"<td>{book}</td></tr>")
    return ("<table><tr><th>#</th><th>rung</th><th>test accuracy</th><th>95% CI</th>"
            "<th>with flip TTA (95% CI; McNemar p vs plain)</th><th>per-class F1</th>"
            "<th>test loss</th><th>epochs</th><th>train s</th><th>trained params</th><th>book</th></tr>"
            + "".join(rows) + "</table>")


def _comparisons(study: dict) -> str:
    rows = "".join(
        f"<tr><td>{_esc(c['a'])}</td><td>{_esc(c['b'])}</td><td>{_esc(c['kind'])}</td><td>{c['only_a_right']}</td>"
        f"<td>{c['only_b_right']}</td><td>{c['p_value']:.3g}</td><td class='{c['verdict'].split()[0]}'>"
        f"{_esc(c['verdict'])}</td></tr>" for c in study.get("comparisons", []))
    return ("<table><tr><th>rung</th><th>against</th><th>which</th><th>only it right</th><th>only other right</th>"
            "<th>McNemar p</th><th>verdict</th></tr>" + rows + "</table>")


def _nice_step(span: float, most: int) -> float:
    """The smallest of 1, 2, 5 × 10^k that cuts ``span`` into at most ``most`` steps."""
    power = 10 ** math.floor(math.log10(span / most)) if span > 0 else 1.0
    return next(power * m for m in (1, 2, 5, 10) if span / (power * m) <= most)


def _curves_svg(folder: Path, study: dict) -> str:
    """Validation accuracy per epoch of every finished rung, overlaid: an inline SVG that scales to the
    page's width (viewBox), with gridlines and labelled ticks on both axes, axis titles, a point per
    epoch (its value as a tooltip) and the legend beside the plot, where it hides no line."""
    series = []
    for i, r in enumerate(study["rungs"]):
        if r["status"] != "finished":
            continue
        values = rundir.read_history(folder / r["run_dir"]).get("val_accuracy", [])
        values = [v for v in values if v == v]  # NaN: an epoch without validation
        if values:
            series.append((r["name"], COLOURS[i % len(COLOURS)], values))
    if not series:
        return "<p>No validation curves.</p>"
    width, height, font = 1000, 440, 15
    left, right, top, bottom = 78, 270, 16, 62  # the legend's column is right of the plot
    plot_w, plot_h = width - left - right, height - top - bottom
    longest = max(len(v) for _, _, v in series)
    smallest, largest = min(min(v) for _, _, v in series), max(max(v) for _, _, v in series)
    y_step = _nice_step(max(largest - smallest, 0.05), 6)  # the axis spans the data, in round steps
    low = max(0.0, y_step * math.floor(smallest / y_step + 1e-9))
    high = max(min(1.0, y_step * math.ceil(largest / y_step - 1e-9)), low + y_step)

    def x_at(epoch: int) -> float:
        return left + plot_w * ((epoch - 1) / max(longest - 1, 1))

    def y_at(value: float) -> float:
        return top + plot_h * (high - value) / (high - low)

    parts = [f"<svg viewBox='0 0 {width} {height}' style='width:100%;max-width:{width}px;height:auto' role='img' "
             f"aria-label='validation accuracy per epoch of every rung' font-size='{font}' font-family='sans-serif'>",
             f"<rect x='{left}' y='{top}' width='{plot_w}' height='{plot_h}' fill='#fcfcfc' stroke='#888'/>"]
    ticks = round((high - low) / y_step)
    digits = 2 if y_step >= 0.01 else 3
    for k in range(ticks + 1):
        value = low + k * y_step
        y = y_at(value)
        parts.append(f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e2e2e2'/>"
                     f"<text x='{left - 8}' y='{y + font / 3:.1f}' text-anchor='end'>{value:.{digits}f}</text>")
    x_step = max(1, int(_nice_step(max(longest - 1, 1), 15)))
    first = 1 if x_step == 1 or x_step >= 5 else x_step  # "1 2 4 6": 1 and 2 would crowd each other
    for epoch in sorted({first, *range(x_step, longest + 1, x_step)}):
        x = x_at(epoch)
        parts.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top}' y2='{top + plot_h}' stroke='#eeeeee'/>"
                     f"<text x='{x:.1f}' y='{top + plot_h + font + 6}' text-anchor='middle'>{epoch}</text>")
    parts.append(f"<text x='{left + plot_w / 2:.0f}' y='{height - 10}' text-anchor='middle'>epoch</text>"
                 f"<text transform='translate(18 {top + plot_h / 2:.0f}) rotate(-90)' text-anchor='middle'>"
                 "validation accuracy</text>")
    for n, (name, colour, values) in enumerate(series):
        points = " ".join(f"{x_at(i):.1f},{y_at(v):.1f}" for i, v in enumerate(values, start=1))
        parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2.5' points='{points}'/>")
        parts.extend(f"<circle cx='{x_at(i):.1f}' cy='{y_at(v):.1f}' r='3.5' fill='{colour}'>"
                     f"<title>{_esc(name)}, epoch {i}: {v:.3f}</title></circle>" for i, v in enumerate(values, start=1))
        y = top + 12 + 26 * n
        legend_x = left + plot_w + 18
        parts.append(f"<line x1='{legend_x}' x2='{legend_x + 26}' y1='{y}' y2='{y}' stroke='{colour}' "
                     f"stroke-width='3'/><text x='{legend_x + 34}' y='{y + font / 3:.1f}'>{_esc(name)} "
                     f"({max(values):.3f})</text>")
    parts.append(f"<text x='{left + plot_w + 18}' y='{top + 12 + 26 * len(series) + 4}' font-size='{font - 2}' "
                 "fill='#666'>(best validation accuracy)</text></svg>")
    return "".join(parts)


def _confusions(study: dict) -> str:
    classes = study["dataset"]["classes"]
    cells = []
    for r in _finished(study):
        matrix = r.get("confusion_matrix") or []
        head = "".join(f"<th>{_esc(c)}</th>" for c in classes)
        body = "".join(f"<tr><th>{_esc(classes[i])}</th>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
                       for i, row in enumerate(matrix))
        cells.append(f"<div class='cm'><h4>{_esc(r['name'])}</h4><table><tr><th>true \\ predicted</th>{head}</tr>"
                     f"{body}</table></div>")
    return "<div class='row'>" + "".join(cells) + "</div>"


def _png_uri(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _read_rgb(path: str):
    from PIL import Image  # noqa: PLC0415

    with Image.open(path) as image:
        return image.convert("RGB")


def _fit(image, size: int):
    """``image`` with its longer side ``size`` px: small images (28-px Fashion-MNIST) are enlarged, or
    their Grad-CAM would be a speck in the report."""
    from PIL import Image  # noqa: PLC0415

    scale = size / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.LANCZOS)


def _thumbnail(path: str, size: int = 96) -> str:
    try:
        image = _read_rgb(path)
    except OSError:
        return ""
    return _png_uri(_fit(image, size))


def _grad_cams(folder: Path, rungs: list[dict], paths: list[str], size: int = 96) -> dict[tuple[str, str], str]:
    """Grad-CAM overlays of ``paths`` under every rung's model, through the one explain route (the
    predicted class, the model's default layer); a rung or image that cannot be explained is left out."""
    import numpy as np  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    from engine.errors import ConvScopeError  # noqa: PLC0415
    from engine.inspect.cam import overlay  # noqa: PLC0415
    from engine.inspect.explain import ExplainRequest, explain  # noqa: PLC0415
    from engine.models.loading import load_model  # noqa: PLC0415

    out: dict[tuple[str, str], str] = {}
    for rung in rungs:
        try:
            loaded = load_model(folder / rung["run_dir"])
        except ConvScopeError:
            continue
        for path in paths:
            try:
                result = explain(loaded, np.asarray(_read_rgb(path)), ExplainRequest())
            except (ConvScopeError, OSError):
                continue
            out[(rung["name"], path)] = _png_uri(_fit(Image.fromarray(overlay(result.shown, result.heatmap)), size))
    return out


def _disagreements(folder: Path, study: dict, count: int = 8) -> str:
    done = _finished(study)
    answers: dict[str, dict[str, tuple[str, str]]] = {}
    for r in done:
        metrics = rundir.read_json(folder / r["run_dir"] / rundir.METRICS, {}) or {}
        for p in metrics.get("predictions", []):
            answers.setdefault(p["path"], {})[r["name"]] = (p["true"], p["predicted"])
    shared = [path for path, by in answers.items() if len(by) == len(done)]
    if not shared:
        return "<p>No shared test predictions.</p>"

    def wrong(path: str) -> int:
        return sum(1 for true, predicted in answers[path].values() if true != predicted)

    # images the rungs disagree on most first: about half right and half wrong
    chosen = sorted(shared, key=lambda p: (abs(wrong(p) - len(done) / 2), p))[:count]
    cams = _grad_cams(folder, done, chosen)
    head = "".join(f"<th>{_esc(r['name'])}</th>" for r in done)
    rows = []
    for path in chosen:
        true = next(iter(answers[path].values()))[0]
        cells = []
        for r in done:
            predicted = answers[path][r["name"]][1]
            cam = cams.get((r["name"], path))
            picture = f"<img class='cam' src='{cam}' alt='Grad-CAM'><br>" if cam else ""
            cells.append(f"<td class='{'ok' if predicted == true else 'bad'}'>{picture}{_esc(predicted)}</td>")
        rows.append(f"<tr><td><img src='{_thumbnail(path)}' alt='{_esc(Path(path).name)}'><br>"
                    f"<small>{_esc(Path(path).name)}</small></td><td>{_esc(true)}</td>{''.join(cells)}</tr>")
    return (f"<p>Each cell: the rung's answer and its Grad-CAM (what it looked at for that answer).</p>"
            f"<table><tr><th>image</th><th>true</th>{head}</tr>" + "".join(rows) + "</table>")


STYLE = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f2f2f2}.row{display:flex;flex-wrap:wrap;gap:16px}.cm h4{margin:4px 0}
.ok{background:#e3f4e1}.bad{background:#fbe0e0}.better{color:#1f7a1f}.worse{color:#b22}
"""


def _counts(split_counts: dict) -> str:
    return ", ".join(f"{subset} {sum(per_class.values())}" for subset, per_class in split_counts.items())


def render(folder: Path, study: dict) -> str:
    settings, dataset = study["settings"], study["dataset"]
    paragraph = "".join(f"<li>{_esc(s)}</li>" for s in narrative(study))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>ConvScope study</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Study: {_esc(Path(dataset['root']).name)}</h1>"
        f"<p>Profile <b>{_esc(settings['profile'])}</b>, base <b>{_esc(settings['base'])}</b>, classes "
        f"{_esc(', '.join(dataset['classes']))}; split {_esc(_counts(dataset['split_counts']))} — every rung is "
        f"tested on the same images. Dataset fingerprint {_esc(dataset['fingerprint'])}.</p>"
        f"<h2>Results per rung</h2>{_table(study)}"
        f"<h2>What this dataset says</h2><ul>{paragraph}</ul>"
        f"<h2>Paired significance (McNemar's exact test)</h2>{_comparisons(study)}"
        f"<h2>Validation accuracy per epoch</h2>{_curves_svg(folder, study)}"
        f"<h2>Confusion matrices</h2>{_confusions(study)}"
        f"<h2>Test images the rungs disagree on most, explained by every rung</h2>{_disagreements(folder, study)}"
        f"<p><small>Versions: {_esc(study.get('versions', {}))}</small></p>"
        "</body></html>")


def write_report(folder: str | Path, study: dict) -> Path:
    folder = Path(folder)
    path = folder / REPORT
    atomic.write_text(path, render(folder, study))
    return path
