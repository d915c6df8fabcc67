"""The export job: load the model, write the artifact, check it against Keras, write the model card.

``run(config, emit, cancel) -> ExportResult`` is the one route: ``convscope export`` and the GUI's
Export dialog both call it. Everything is built in a temporary folder beside the destination
(``engine.atomic.atomic_folder``) and published under the final name only after the parity check
passed: a crash, a full disk or a cancel leaves nothing under that name, and an existing export is
replaced only with ``force`` and only once the new one is complete. A failed parity check keeps the
export, model card included, under ``<destination>.failed`` and raises :class:`ParityError`.

The export folder holds the artifact (``model.tflite``, ``model.onnx``, ``model.keras``; for a
SavedModel the folder itself) beside ``model_card.json`` and ``model_card.md``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import atomic
from engine.errors import InvalidSetting, ModelFileError, ParityError
from engine.events import CancelToken, Sink, Status, discard
from engine.export import card as model_card
from engine.export import parity
from engine.export.registry import QUANTIZATIONS, check_quantization, get_format
from engine.export.request import ExportRequest

FAILED_SUFFIX = ".failed"


@dataclass(frozen=True)
class ExportConfig:
    model: str  # a run folder, a .keras file or a base name (engine.models.loading)
    format: str
    out: str  # the export folder to create
    quantize: str = "none"
    force: bool = False
    images: str | None = None  # parity images when the model is not a run folder (or instead of its test split)
    max_images: int | None = None
    max_accuracy_drop: float = parity.DEFAULT_MAX_ACCURACY_DROP
    trust: bool = False

    def validate(self) -> None:
        fmt = get_format(self.format)
        check_quantization(fmt, self.quantize)
        if not str(self.out).strip():
            raise InvalidSetting("no destination given", "pass --out FOLDER (the export folder to create)")
        if Path(self.out).suffix.lower() in (".tflite", ".onnx", ".keras", ".pb"):
            raise InvalidSetting(f"--out '{self.out}' names a file; it is the export folder to create",
                                 f"give a folder, e.g. {Path(self.out).with_suffix('')}: the artifact "
                                 "and its model card go inside it")
        if self.max_images is not None and self.max_images < 1:
            raise InvalidSetting(f"--max-images {self.max_images} must be at least 1", "give a positive number")
        if not 0 <= self.max_accuracy_drop <= 1:
            raise InvalidSetting(f"--max-accuracy-drop {self.max_accuracy_drop} must be between 0 and 1",
                                 "e.g. 0.01 for one accuracy point")


@dataclass
class ExportResult:
    path: str  # the export folder (or the .failed folder)
    format: str
    quantize: str
    artifact: str  # the artifact's path
    size_bytes: int
    parity: dict[str, Any]
    card: str  # model_card.json's path
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_destination(out: Path, force: bool) -> None:
    if (out.exists() or out.is_symlink()) and not force:
        raise InvalidSetting(f"'{out}' already exists", "choose another --out, or replace it with --force")
    if out.exists() and not out.is_dir():
        raise InvalidSetting(f"'{out}' is a file, not an export folder", "choose another --out")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _name_classes(loaded, images: str | None) -> list[str]:
    """A bare .keras file has no class names: take the sorted class folders of ``images`` (the order
    training gave them) when their number fits the model's outputs, else class_0, class_1..."""
    if loaded.class_names:
        return []
    count = max(2, loaded.num_outputs)
    folders = sorted(p.name for p in Path(images).expanduser().iterdir()
                     if p.is_dir() and not p.name.startswith(".")) if images and Path(images).is_dir() else []
    if len(folders) == count:
        loaded.class_names = folders
        return [f"class names taken from the sorted class folders of {images}"]
    loaded.class_names = [f"class_{i}" for i in range(count)]
    return ["the model file names no classes: outputs are called class_0, class_1, ..."]


def _parity_images(config: ExportConfig, loaded, run_dir: Path | None) -> parity.ImageSet:
    if config.images:
        found = parity.user_images(config.images, loaded.class_names)
    elif run_dir is not None:
        test = parity.run_split(run_dir, "test")
        if not test:
            raise InvalidSetting(f"run '{run_dir}' has no test images to check the export on",
                                 "give images with --images FOLDER")
        found = parity.ImageSet(test, f"the test split of {run_dir.name}")
    else:
        raise InvalidSetting(f"'{config.model}' is not a run folder, so there are no test images to check the "
                             "export on", "give images with --images FOLDER (class folders give accuracy too)")
    return parity.ImageSet(parity.sample(found.items, config.max_images), found.source)


def _representative(config: ExportConfig, run_dir: Path | None, images: parity.ImageSet, size: int, emit: Sink):
    if config.quantize != "int8":
        return None, []
    train = parity.run_split(run_dir, "train") if run_dir is not None else []
    if train:
        return parity.representative(train, size, emit), ["int8 calibrated on up to "
                                                          f"{parity.REPRESENTATIVE_COUNT} images of the training split"]
    return parity.representative(images.items, size, emit), [
        f"int8 calibrated on the parity images ({images.source}): no training split was available"]


def run(config: ExportConfig, emit: Sink = discard, cancel: CancelToken | None = None) -> ExportResult:
    """Export, verify, write the model card; see the module doc."""
    started = time.perf_counter()
    config.validate()
    fmt = get_format(config.format)
    out = Path(config.out).expanduser()
    check_destination(out, config.force)
    from engine.models.loading import load_model  # noqa: PLC0415

    emit(Status(f"loading {config.model}"))
    loaded = load_model(config.model, trust=config.trust)
    shape = tuple(loaded.model.inputs[0].shape)
    if not loaded.input_size or len(shape) != 4 or shape[-1] != 3:
        raise ModelFileError(f"'{config.model}': the model's input {shape} is not a fixed-size RGB image",
                             "export a model that takes (S, S, 3) raw RGB images, as every ConvScope model does")
    notes = _name_classes(loaded, config.images)
    run_dir = Path(loaded.source) if loaded.kind == "run" else None
    images = _parity_images(config, loaded, run_dir)
    representative, calibration = _representative(config, run_dir, images, loaded.input_size, emit)
    notes += calibration
    if cancel is not None:
        cancel.raise_if_cancelled()
    implementation = fmt.implementation()
    with atomic.atomic_folder(out, replace=config.force) as stage:
        artifact = stage / fmt.artifact if fmt.artifact else stage
        request = ExportRequest(model=loaded.model, input_size=loaded.input_size, stage=stage, artifact=artifact,
                                quantize=config.quantize, representative=representative, notes=notes)
        emit(Status(f"writing {fmt.label}" + (f" ({config.quantize})" if config.quantize != "none" else "")))
        implementation.write(request)
        shutil.rmtree(stage / ".work", ignore_errors=True)
        if cancel is not None:
            cancel.raise_if_cancelled()
        emit(Status(f"checking the {fmt.label} export in {fmt.runtime} on {len(images.items)} images"))
        report = parity.compare(lambda x: loaded.model(x, training=False), implementation.load(artifact), images,
                                loaded.input_size, quantize=config.quantize,
                                max_accuracy_drop=config.max_accuracy_drop, emit=emit, cancel=cancel)
        size = _size(artifact)
        relative = fmt.artifact or ""
        card = model_card.build(fmt=fmt, quantize=config.quantize, artifact=relative, size_bytes=size, loaded=loaded,
                                parity=report.to_dict(), notes=request.notes, run_dir=run_dir,
                                runtime=implementation.usage({"artifact": relative}))
        model_card.write(stage, card)
        final = out
        if not report.passed:
            final = out.with_name(out.name + FAILED_SUFFIX)
            atomic.publish_folder(stage, final, replace=True)
    result = ExportResult(path=str(final), format=fmt.name, quantize=config.quantize,
                          artifact=str(final / fmt.artifact if fmt.artifact else final), size_bytes=size,
                          parity=report.to_dict(), card=str(final / model_card.JSON_NAME),
                          seconds=time.perf_counter() - started, notes=list(request.notes))
    if not report.passed:
        error = ParityError(f"the {fmt.label} export differs from the Keras model: {report.summary()}; "
                            f"required: {report.criterion}. Kept for inspection in '{final}'",
                            "export without quantization, or to another format; for a quantized export, "
                            "--max-accuracy-drop sets the accepted loss")
        error.result = result  # the GUI shows the figures of a failed check too
        raise error
    emit(Status(f"exported to {final}: {report.summary()}"))
    return result


__all__ = ["ExportConfig", "ExportResult", "FAILED_SUFFIX", "QUANTIZATIONS", "run"]
