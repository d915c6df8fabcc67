"""Train / validation / test split: stratified per class, seeded, and frozen in the run folder.

The split depends only on the seed, the fractions and each class's sorted relative file names, so
the same dataset splits the same way on any machine and in any folder. Each class is shuffled with
its own generator (seeded by the seed and the class name), so adding a class does not reshuffle the
others. A pre-split folder (train/ validation/ test/) keeps its own subsets.

Saved as ``<run>/split/{train,validation,test}.txt`` (one ``<class index>\\t<JSON-quoted path>`` per
line; the path is relative to the data root when it lies inside it) plus ``classes.json``.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import atomic
from engine.data.scan import SUBSETS, ScanResult
from engine.errors import DatasetError, InvalidSetting

Item = tuple[str, int]


@dataclass
class Split:
    classes: list[str]
    train: list[Item]
    validation: list[Item]
    test: list[Item]
    root: str = ""  # the data folder the paths were found in
    meta: dict[str, Any] = field(default_factory=dict)  # seed, fractions, dataset fingerprint

    def subset(self, name: str) -> list[Item]:
        if name not in SUBSETS:
            raise InvalidSetting(f"unknown subset '{name}'", f"use one of {', '.join(SUBSETS)}")
        return getattr(self, name)

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            name: {cls: sum(1 for _, label in self.subset(name) if label == index) for index, cls in enumerate(self.classes)}
            for name in SUBSETS
        }


def _class_rng(seed: int, class_name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(class_name.encode("utf-8"))])


def _relative(path: str, root: str) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _stratified(items: list[Item], root: str, classes: list[str], fractions: tuple[float, float], seed: int
                ) -> tuple[list[Item], list[Item], list[Item]]:
    train: list[Item] = []
    validation: list[Item] = []
    test: list[Item] = []
    for index, name in enumerate(classes):
        members = sorted((item for item in items if item[1] == index), key=lambda item: _relative(item[0], root))
        order = _class_rng(seed, name).permutation(len(members))
        shuffled = [members[i] for i in order]
        n_validation = int(round(len(shuffled) * fractions[0]))
        n_test = int(round(len(shuffled) * fractions[1]))
        if n_validation + n_test >= len(shuffled):  # tiny class: keep at least one training image
            n_test = max(0, min(n_test, len(shuffled) - 1 - n_validation))
            n_validation = max(0, min(n_validation, len(shuffled) - 1))
        validation += shuffled[:n_validation]
        test += shuffled[n_validation:n_validation + n_test]
        train += shuffled[n_validation + n_test:]
    return train, validation, test


def make_split(scan_result: ScanResult, validation_fraction: float = 0.25, test_fraction: float = 0.25,
               seed: int = 0) -> Split:
    """Split a scan into train/validation/test, stratified per class and deterministic in ``seed``.

    A pre-split folder keeps its subsets; if it has no validation/ folder, ``validation_fraction``
    of train/ becomes the validation set (stratified), and a missing test/ stays empty.
    """
    for name, value in (("validation fraction", validation_fraction), ("test fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise InvalidSetting(f"{name} is {value}", "use a value from 0 up to (not including) 1")
    if validation_fraction + test_fraction >= 1.0:
        raise InvalidSetting(
            f"validation fraction {validation_fraction} + test fraction {test_fraction} leave no training images",
            "make their sum smaller than 1",
        )
    root, classes = scan_result.root, list(scan_result.classes)
    meta = {"seed": seed, "validation_fraction": validation_fraction, "test_fraction": test_fraction,
            "fingerprint": scan_result.fingerprint, "layout": scan_result.layout}
    if scan_result.layout == "split":
        files = scan_result.files
        train, validation, test = list(files.get("train", [])), list(files.get("validation", [])), list(files.get("test", []))
        if not validation:
            train, validation, _ = _stratified(train, root, classes, (validation_fraction, 0.0), seed)
        meta["validation_fraction"] = None if files.get("validation") else validation_fraction
        meta["test_fraction"] = None
    else:
        train, validation, test = _stratified(scan_result.files["all"], root, classes,
                                              (validation_fraction, test_fraction), seed)
    return Split(classes, train, validation, test, root=root, meta=meta)


def save_split(split: Split, folder: str | os.PathLike) -> Path:
    """Write the split into ``folder`` (normally ``<run>/split``) and return that folder."""
    folder = Path(folder)
    for name in SUBSETS:
        lines = [f"{label}\t{json.dumps(_relative(path, split.root), ensure_ascii=False)}\n"
                 for path, label in split.subset(name)]
        atomic.write_text(folder / f"{name}.txt", "".join(lines))
    atomic.write_json(folder / "classes.json", {"classes": split.classes, "root": split.root, **split.meta})
    return folder


def _read_subset(path: Path, root: Path, num_classes: int) -> list[Item]:
    items: list[Item] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            label_text, path_text = line.split("\t", 1)
            label, name = int(label_text), json.loads(path_text)
        except ValueError:
            raise DatasetError(f"{path} line {number} is damaged", "start a new run to make a new split") from None
        if not 0 <= label < num_classes:
            raise DatasetError(f"{path} line {number} names class {label} of {num_classes}", "start a new run")
        items.append((str(root / name) if not os.path.isabs(name) else name, label))
    return items


def load_split(folder: str | os.PathLike, data_root: str | os.PathLike | None = None, check_files: bool = True) -> Split:
    """Read a split saved by :func:`save_split`. ``data_root`` relocates the data folder when it was
    moved. Raises :class:`DatasetError` naming the split file and the first missing image when
    ``check_files`` and listed files no longer exist."""
    folder = Path(folder)
    info_path = folder / "classes.json"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{info_path} is missing", "the run folder has no saved split; start a new run") from None
    except json.JSONDecodeError:
        raise DatasetError(f"{info_path} is damaged", "start a new run to make a new split") from None
    classes = list(info["classes"])
    root = Path(data_root) if data_root is not None else Path(info.get("root", ""))
    subsets: dict[str, list[Item]] = {}
    for name in SUBSETS:
        path = folder / f"{name}.txt"
        subsets[name] = _read_subset(path, root, len(classes)) if path.exists() else []
        if check_files:
            missing = [item_path for item_path, _ in subsets[name] if not os.path.exists(item_path)]
            if missing:
                raise DatasetError(
                    f"{len(missing)} image(s) listed in {path} no longer exist (first: {missing[0]})",
                    "restore them, pass the data folder's new location, or start a new run (the split is frozen)",
                )
    meta = {key: value for key, value in info.items() if key not in ("classes", "root")}
    return Split(classes, subsets["train"], subsets["validation"], subsets["test"], root=str(root), meta=meta)
