"""``convscope scan DATA [--json]``: what a dataset folder holds and which files cannot be used."""

from __future__ import annotations

import argparse
import os

from engine.commands.common import print_json, say
from engine.data.scan import ScanConfig, ScanResult, scan


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "scan", help="report classes, counts, image sizes and unusable files of a dataset folder",
        description="Scan a folder of class folders (or train/ validation/ test/ folders). Unusable files "
                    "are listed and skipped, never changed. Exit status 0 when the folder can be trained on, "
                    "2 when it cannot (missing, no usable images, a single class).",
    )
    parser.add_argument("data", metavar="DATA", help="the dataset folder")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.set_defaults(func=run_scan)


def run_scan(args: argparse.Namespace) -> int:
    result = scan(ScanConfig(root=args.data))
    if args.json:
        print_json(result.to_dict())
    else:
        for line in format_report(result):
            say(line)
    return 0


def _relative(path: str, root: str) -> str:
    try:
        return os.path.relpath(path, root)
    except ValueError:  # another drive on Windows
        return path


def format_report(result: ScanResult) -> list[str]:
    """The human-readable scan report, one line per item."""
    layout = "already split (train/ validation/ test/)" if result.layout == "split" else "a folder of class folders"
    lines = [f"Dataset: {result.root} — {layout}"]
    subsets = list(result.counts)
    width = max(len(name) for name in result.classes)
    lines.append(f"Classes ({len(result.classes)}), label = index in sorted folder names:")
    if result.layout == "split":
        lines.append("  " + " " * (width + 5) + "".join(f"{s:>12}" for s in subsets))
    for index, name in enumerate(result.classes):
        counts = "".join(f"{result.counts[s].get(name, 0):>12}" for s in subsets)
        lines.append(f"  {index:>2}  {name:<{width}} {counts}")
    lines.append(f"Usable images: {result.num_images}")
    summary = result.size_summary
    if summary.get("count"):
        w, h = summary["width"], summary["height"]
        common = ", ".join(f"{cw}x{ch} ({n})" for cw, ch, n in summary["most_common"])
        lines.append(f"Sizes: width {w['min']}–{w['max']} (median {w['median']:g}), "
                     f"height {h['min']}–{h['max']} (median {h['median']:g}); most common {common}")
        modes = ", ".join(f"{mode} {n}" for mode, n in summary["modes"].items())
        formats = ", ".join(f"{fmt} {n}" for fmt, n in summary["formats"].items())
        lines.append(f"Formats: {formats}; modes: {modes}; EXIF-rotated: {summary['exif_rotated']}")
    if result.unusable:
        lines.append(f"Unusable files ({len(result.unusable)}), skipped and left untouched:")
        lines += [f"  {_relative(issue.path, result.root)}: {issue.reason}" for issue in result.unusable]
    else:
        lines.append("Unusable files: none")
    if result.decoded_with_warnings:
        lines.append(f"Decoded with warnings ({len(result.decoded_with_warnings)}), kept in the dataset:")
        lines += [f"  {_relative(issue.path, result.root)}: {issue.reason}" for issue in result.decoded_with_warnings]
    lines.append(f"Ignored (hidden, not images, or outside class folders): {len(result.ignored)}")
    lines += [f"Warning: {message}" for message in result.warnings]
    lines.append(f"Fingerprint: {result.fingerprint}")
    return lines
