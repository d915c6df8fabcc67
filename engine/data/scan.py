"""Scan a dataset folder: classes, counts, image sizes, and every file that cannot be used, with why.

Two layouts are recognised:

- ``classes``: a folder of class folders (``data/cats/*.jpg``, ``data/dogs/*.jpg``). Labels are the
  sorted folder names, as in ``keras.utils.image_dataset_from_directory``; images may sit in
  sub-folders of a class folder.
- ``split``: the book's already-split folder (``data/train/<class>/``, ``data/validation/<class>/``,
  ``data/test/<class>/``; ``val``/``valid`` also name the validation subset).

Every candidate image is fully decoded (a truncated file is caught here, not in epoch 7). Unusable
files are listed with the reason and skipped; the scan never deletes, moves or modifies a file. A
JPEG that decodes but is damaged (libjpeg's "Corrupt JPEG data", see ``engine.data.jpeg_check``) is
kept and listed under ``decoded_with_warnings``.
Hidden files (``.DS_Store``, ``Thumbs.db``, dotfiles), files that are not images and files outside a
class folder are listed as ignored. A class folder with no usable image is left out with a warning.

A dataset folder is untrusted input: only regular files (and links to them) are read — a named pipe,
socket or device called ``x.jpg`` is listed as "not a regular file" and never opened for a blocking
read — and a file whose read does not finish within ``file_timeout_s`` is abandoned and listed, so
no single file can stall a scan. Links are followed to files only: ``os.walk`` does not descend into
linked folders, so a link to the class folder itself or a link loop is never walked; a dangling link
is listed as unreadable.
"""

from __future__ import annotations

import hashlib
import os
import queue
import statistics
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.data.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    UNSUPPORTED_EXTENSIONS,
    ImageInfo,
    UnusableImage,
    inspect_image,
)
from engine.errors import DatasetError, InvalidSetting
from engine.events import CancelToken, JobCancelled, Progress, Sink, Warning_, discard

SUBSET_NAMES = {"train": "train", "validation": "validation", "val": "validation", "valid": "validation", "test": "test"}
SUBSETS = ("train", "validation", "test")
_SYSTEM_FILES = {"thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r"}
_SYSTEM_DIRS = {"__macosx", "@eadir", "$recycle.bin", "system volume information"}
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class FileIssue:
    """An unusable file and why (``kind`` is one of ``engine.data.images.ISSUE_KINDS``), or a kept file
    that decoded with warnings (``kind`` "decoded-with-warnings")."""

    path: str
    reason: str
    kind: str = "undecodable"


@dataclass(frozen=True)
class ScanConfig:
    root: str
    max_pixels: int = DEFAULT_MAX_PIXELS  # larger images are refused as possible decompression bombs
    workers: int = 0  # decoding threads; 0 picks twice the CPU count (decoders release the GIL)
    file_timeout_s: float = 60.0  # one file's read + decode; a healthy file takes well under a second

    def validate(self) -> None:
        if not str(self.root).strip():
            raise InvalidSetting("no dataset folder given", "choose a folder that holds one sub-folder per class")
        if self.max_pixels < 1:
            raise InvalidSetting(f"max_pixels is {self.max_pixels}", "use a positive pixel limit")
        if self.workers < 0:
            raise InvalidSetting(f"workers is {self.workers}", "use 0 (automatic) or a positive thread count")
        if not self.file_timeout_s > 0:
            raise InvalidSetting(f"file timeout is {self.file_timeout_s} s", "use a positive number of seconds")


@dataclass
class ScanResult:
    root: str
    layout: str  # "classes" | "split"
    classes: list[str]
    files: dict[str, list[tuple[str, int]]]  # subset ("all" or train/validation/test) -> (path, class index)
    counts: dict[str, dict[str, int]]
    unusable: list[FileIssue]
    ignored: list[str]
    size_summary: dict[str, Any]
    fingerprint: str
    warnings: list[str] = field(default_factory=list)
    decoded_with_warnings: list[FileIssue] = field(default_factory=list)  # damaged but decodable: kept

    @property
    def num_images(self) -> int:
        return sum(len(items) for items in self.files.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "layout": self.layout,
            "classes": list(self.classes),
            "counts": self.counts,
            "num_images": self.num_images,
            "files": {subset: [[path, label] for path, label in items] for subset, items in self.files.items()},
            "unusable": [asdict(issue) for issue in self.unusable],
            "ignored": list(self.ignored),
            "size_summary": self.size_summary,
            "fingerprint": self.fingerprint,
            "warnings": list(self.warnings),
            "decoded_with_warnings": [asdict(issue) for issue in self.decoded_with_warnings],
        }


@dataclass(frozen=True)
class _Candidate:
    path: str
    rel: str
    subset: str
    class_name: str
    size: int
    mtime_ns: int


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in _SYSTEM_FILES


def _subdirs(folder: Path) -> list[Path]:
    return sorted(
        (entry for entry in folder.iterdir() if entry.is_dir() and not _is_hidden(entry.name)
         and entry.name.lower() not in _SYSTEM_DIRS),
        key=lambda entry: entry.name,
    )


def _detect_layout(root: Path) -> tuple[str, dict[str, Path]]:
    """("split", {subset: folder}) when ``root`` holds train/ plus validation/ or test/, else
    ("classes", {"all": root})."""
    subsets: dict[str, Path] = {}
    for folder in _subdirs(root):
        subset = SUBSET_NAMES.get(folder.name.lower())
        if subset and subset not in subsets:
            subsets[subset] = folder
    if "train" in subsets and len(subsets) > 1:
        return "split", subsets
    return "classes", {"all": root}


def _walk_class_folder(folder: Path, root: Path, subset: str, class_name: str,
                       candidates: list[_Candidate], ignored: list[str]) -> None:
    for dirpath, dirnames, filenames in os.walk(folder):
        kept = []
        for name in sorted(dirnames):
            if _is_hidden(name) or name.lower() in _SYSTEM_DIRS:
                ignored.append(os.path.join(dirpath, name) + os.sep)
            else:
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            suffix = os.path.splitext(name)[1].lower()
            if _is_hidden(name) or (suffix not in IMAGE_EXTENSIONS and suffix not in UNSUPPORTED_EXTENSIONS):
                ignored.append(path)
                continue
            try:
                stat = os.stat(path)
                size, mtime = stat.st_size, stat.st_mtime_ns
            except OSError:
                size, mtime = -1, 0
            rel = Path(path).relative_to(root).as_posix()
            candidates.append(_Candidate(path, rel, subset, class_name, size, mtime))


def _loose_entries(folder: Path, keep: set[Path]) -> list[str]:
    """Files and folders directly in ``folder`` that are not class (or subset) folders."""
    return [
        str(entry) + (os.sep if entry.is_dir() else "")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry not in keep
    ]


def _collect(root: Path, layout: str, subsets: dict[str, Path]
             ) -> tuple[list[_Candidate], list[str], dict[str, list[str]]]:
    candidates: list[_Candidate] = []
    ignored: list[str] = []
    folders: dict[str, list[str]] = {}
    if layout == "split":
        ignored += _loose_entries(root, set(subsets.values()))
    for subset, subset_root in subsets.items():
        class_dirs = _subdirs(subset_root)
        ignored += _loose_entries(subset_root, set(class_dirs))
        folders[subset] = [class_dir.name for class_dir in class_dirs]
        for class_dir in class_dirs:
            _walk_class_folder(class_dir, root, subset, class_dir.name, candidates, ignored)
    return candidates, ignored, folders


def _decode_all(candidates: list[_Candidate], config: ScanConfig, emit: Sink, cancel: CancelToken | None
                ) -> dict[str, ImageInfo | UnusableImage]:
    """Decode every candidate on daemon threads. A file whose read and decode take longer than
    ``config.file_timeout_s`` (a stalled network drive, a device) is listed as timed out and left to
    its thread; a fresh thread takes its place, and no thread of ours keeps the process alive."""
    results: dict[str, ImageInfo | UnusableImage] = {}
    total = len(candidates)
    todo: queue.SimpleQueue[_Candidate] = queue.SimpleQueue()
    finished: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
    busy: dict[str, float] = {}  # path -> when its decode began, while it runs
    stop = threading.Event()
    for candidate in candidates:
        todo.put(candidate)

    def work() -> None:
        while not stop.is_set():
            try:
                candidate = todo.get_nowait()
            except queue.Empty:
                return
            busy[candidate.path] = time.monotonic()
            try:
                outcome: object = inspect_image(candidate.path, config.max_pixels)
            except Exception as problem:  # noqa: BLE001 - UnusableImage, or a bug re-raised below
                outcome = problem
            finished.put((candidate.path, outcome))

    def start_worker() -> None:
        threading.Thread(target=work, name="convscope-scan", daemon=True).start()

    for _ in range(min(total, config.workers or min(32, 2 * (os.cpu_count() or 2)))):
        start_worker()
    emit(Progress(0, total, "decoding images"))
    last_emit = time.monotonic()
    try:
        while len(results) < total:
            try:
                path, outcome = finished.get(timeout=0.1)
            except queue.Empty:
                path, outcome = None, None
            if path is not None and path not in results:
                busy.pop(path, None)
                if not isinstance(outcome, (ImageInfo, UnusableImage)):
                    raise outcome  # a bug, not a bad file
                results[path] = outcome
            if cancel is not None and cancel.cancelled:
                raise JobCancelled()
            now = time.monotonic()
            for stalled, since in list(busy.items()):
                if now - since > config.file_timeout_s and stalled not in results:
                    busy.pop(stalled, None)
                    results[stalled] = UnusableImage(
                        stalled, "timed-out", f"reading did not finish within {config.file_timeout_s:g} s "
                        "(a stalled network drive or a device?); skipped")
                    start_worker()
            if now - last_emit >= 0.1 or len(results) == total:
                emit(Progress(len(results), total, "decoding images"))
                last_emit = now
    finally:
        stop.set()
    return results


def _size_summary(infos: list[ImageInfo]) -> dict[str, Any]:
    if not infos:
        return {"count": 0}
    sizes = [(i.height, i.width) if i.orientation in _ROTATED_ORIENTATIONS else (i.width, i.height) for i in infos]
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    return {
        "count": len(sizes),
        "width": {"min": min(widths), "median": statistics.median(widths), "max": max(widths)},
        "height": {"min": min(heights), "median": statistics.median(heights), "max": max(heights)},
        "most_common": [[w, h, n] for (w, h), n in Counter(sizes).most_common(3)],
        "modes": dict(Counter(i.mode for i in infos).most_common()),
        "formats": dict(Counter(i.format for i in infos).most_common()),
        "exif_rotated": sum(1 for i in infos if i.orientation != 1),
    }


def _fingerprint(layout: str, candidates: list[_Candidate]) -> str:
    digest = hashlib.sha256(f"convscope-dataset-v1\n{layout}\n".encode())
    for candidate in sorted(candidates, key=lambda c: c.rel):
        digest.update(f"{candidate.rel}\0{candidate.size}\0{candidate.mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


def scan(config: ScanConfig, emit: Sink = discard, cancel: CancelToken | None = None) -> ScanResult:
    """Scan ``config.root``. Raises :class:`DatasetError` when the folder is missing, holds no
    usable image, or fewer than two classes with usable images (the partial result, when there is
    one, is attached to the error as ``scan_result``)."""
    config.validate()
    root = Path(config.root).expanduser()
    if not root.exists():
        raise DatasetError(f"dataset folder {root} does not exist", "check the path")
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder", "choose the folder that holds one sub-folder per class")
    root = root.resolve()
    layout, subsets = _detect_layout(root)
    candidates, ignored, folders = _collect(root, layout, subsets)
    if not any(folders.values()):
        raise DatasetError(
            f"{root} holds no class folders",
            f"put the images in one sub-folder per class, e.g. {root / 'cats'} and {root / 'dogs'}",
        )
    decoded = _decode_all(candidates, config, emit, cancel)

    unusable: list[FileIssue] = []
    usable: list[tuple[_Candidate, ImageInfo]] = []
    for candidate in candidates:
        outcome = decoded[candidate.path]
        if isinstance(outcome, UnusableImage):
            unusable.append(FileIssue(candidate.path, outcome.reason, outcome.kind))
        else:
            usable.append((candidate, outcome))

    warnings: list[str] = []
    present = {(c.subset, c.class_name) for c, _ in usable}
    classes = sorted({class_name for _, class_name in present})
    for subset, names in folders.items():
        where = "" if subset == "all" else f" in {subset}/"
        for name in names:
            if (subset, name) not in present:
                warnings.append(f"class folder '{name}'{where} has no usable image; it is left out")
        if layout == "split":
            for name in classes:
                if name not in names and subset != "train":
                    warnings.append(f"class '{name}' has no folder in {subset}/")
    class_index = {name: index for index, name in enumerate(classes)}
    files: dict[str, list[tuple[str, int]]] = {subset: [] for subset in subsets}
    counts: dict[str, dict[str, int]] = {subset: {name: 0 for name in classes} for subset in subsets}
    for candidate, _ in sorted(usable, key=lambda pair: (pair[0].subset, pair[0].class_name, pair[0].rel)):
        files[candidate.subset].append((candidate.path, class_index[candidate.class_name]))
        counts[candidate.subset][candidate.class_name] += 1
    if layout == "split":
        files = {subset: files.get(subset, []) for subset in SUBSETS}
        counts = {subset: counts.get(subset, {name: 0 for name in classes}) for subset in SUBSETS}

    result = ScanResult(
        root=str(root), layout=layout, classes=classes, files=files, counts=counts,
        unusable=sorted(unusable, key=lambda issue: issue.path), ignored=sorted(ignored),
        size_summary=_size_summary([info for _, info in usable]),
        fingerprint=_fingerprint(layout, candidates), warnings=warnings,
        decoded_with_warnings=sorted(
            (FileIssue(c.path, f"corrupt JPEG data: {info.damage}",
                       "decoded-with-warnings") for c, info in usable if info.damage),
            key=lambda issue: issue.path),
    )
    for message in warnings:
        emit(Warning_(message))
    _check_usable(result)
    return result


def _check_usable(result: ScanResult) -> None:
    error = None
    root = result.root
    if not result.classes:
        bad = f" ({len(result.unusable)} unusable files)" if result.unusable else ""
        error = DatasetError(f"no usable images in {root}{bad}", "add JPEG or PNG images to one sub-folder per class")
    elif len(result.classes) == 1:
        error = DatasetError(
            f"only one class ('{result.classes[0]}') has usable images in {root}",
            "a classifier needs at least two class folders with images",
        )
    elif result.layout == "split" and not result.files.get("train"):
        error = DatasetError(f"{Path(root) / 'train'} holds no usable images", "put the training images there")
    if error is not None:
        error.scan_result = result
        raise error
