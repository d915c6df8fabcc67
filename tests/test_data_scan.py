"""Scanning dataset folders: every bad file is listed with its kind and skipped, nothing is modified."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.data import images
from engine.data.scan import ScanConfig, scan
from engine.errors import DatasetError
from engine.events import CancelToken, JobCancelled, Progress, Warning_
from imagegen import (BAD_FILE_WRITERS, IGNORED_FILES, ODD_FILE_WRITERS, damaged_jpeg_bytes, file_hashes,
                      make_presplit_dataset, make_shapes_dataset, write_ignored_files)


def _block_reads_when_root(monkeypatch, path: Path) -> None:
    """chmod 000 does not stop root: make the OS-level refusal happen for that one file anyway."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        real_open = images._open_file

        def refusing_open(target):
            if Path(target) == path:
                raise PermissionError(13, "Permission denied", str(target))
            return real_open(target)

        monkeypatch.setattr(images, "_open_file", refusing_open)


@pytest.mark.parametrize("name", sorted(BAD_FILE_WRITERS))
def test_bad_file_is_listed_with_its_kind_and_skipped(tmp_path, monkeypatch, name):
    root = make_shapes_dataset(tmp_path / "data", per_class=3)
    writer, kind = BAD_FILE_WRITERS[name]
    bad = writer(root / "circle")
    if name == "no-read-permission":
        _block_reads_when_root(monkeypatch, bad)
    result = scan(ScanConfig(str(root)))
    assert [(Path(issue.path), issue.kind) for issue in result.unusable] == [(bad, kind)]
    assert result.counts["all"] == {"circle": 3, "square": 3}
    assert str(bad) not in {path for path, _ in result.files["all"]}
    assert bad.exists()


@pytest.mark.parametrize("name", sorted(ODD_FILE_WRITERS))
def test_odd_but_usable_file_is_counted(tmp_path, name):
    root = make_shapes_dataset(tmp_path / "data", per_class=2)
    odd = ODD_FILE_WRITERS[name](root / "square")
    result = scan(ScanConfig(str(root)))
    assert result.unusable == []
    assert result.decoded_with_warnings == []  # CMYK, EXIF-rotated, ... JPEGs are not "damaged"
    assert (str(odd), result.classes.index("square")) in result.files["all"]


def test_damaged_but_decodable_jpeg_is_kept_and_listed_with_warnings(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=2, fmt="jpg")
    damaged = root / "circle" / "damaged.jpg"
    damaged.write_bytes(damaged_jpeg_bytes())
    before = file_hashes(root)
    result = scan(ScanConfig(str(root)))
    assert file_hashes(root) == before  # never modified
    assert result.unusable == []  # not set aside
    assert (str(damaged), result.classes.index("circle")) in result.files["all"]
    assert [(Path(i.path), i.kind) for i in result.decoded_with_warnings] == [(damaged, "decoded-with-warnings")]
    assert "invalid marker 0x35" in result.decoded_with_warnings[0].reason
    assert result.to_dict()["decoded_with_warnings"][0]["path"] == str(damaged)


def _hashes_including_locked(root: Path, locked: Path) -> dict[str, str]:
    locked.chmod(0o600)
    try:
        return file_hashes(root)
    finally:
        locked.chmod(0)


def test_scan_of_every_bad_and_odd_file_modifies_nothing(tmp_path, monkeypatch):
    root = make_shapes_dataset(tmp_path / "data", per_class=4)
    for writer in ODD_FILE_WRITERS.values():
        writer(root / "circle")
    bad = {name: writer(root / "square") for name, (writer, _) in BAD_FILE_WRITERS.items()}
    write_ignored_files(root / "square")
    locked = bad["no-read-permission"]
    _block_reads_when_root(monkeypatch, locked)
    before = _hashes_including_locked(root, locked)

    result = scan(ScanConfig(str(root)))

    assert _hashes_including_locked(root, locked) == before
    assert {Path(i.path): i.kind for i in result.unusable} == {bad[n]: BAD_FILE_WRITERS[n][1] for n in bad}
    assert sorted(Path(p).name for p in result.ignored) == sorted(IGNORED_FILES)
    assert result.counts["all"] == {"circle": 4 + len(ODD_FILE_WRITERS), "square": 4}


def test_hidden_and_non_image_files_are_ignored_not_errors(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=2)
    write_ignored_files(root / "circle")
    (root / "notes.txt").write_text("outside any class folder")
    (root / "circle" / ".git").mkdir()
    (root / "circle" / ".git" / "x.png").write_bytes(b"")
    result = scan(ScanConfig(str(root)))
    assert result.unusable == []
    names = {Path(p).name for p in result.ignored}
    assert set(IGNORED_FILES) <= names and "notes.txt" in names and ".git" in names
    assert result.counts["all"] == {"circle": 2, "square": 2}


def test_labels_are_sorted_folder_names(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=2, classes=("zebra", "Apple", "mango"))
    result = scan(ScanConfig(str(root)))
    assert result.classes == ["Apple", "mango", "zebra"]
    assert {label for path, label in result.files["all"] if "/mango/" in path} == {1}


def test_empty_class_folder_is_a_warning(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=2)
    (root / "unicorn").mkdir()
    events = []
    result = scan(ScanConfig(str(root)), emit=events.append)
    assert result.classes == ["circle", "square"]
    assert any("unicorn" in w for w in result.warnings)
    assert any(isinstance(e, Warning_) and "unicorn" in e.message for e in events)


def test_single_class_is_an_error(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=2, classes=("circle",))
    with pytest.raises(DatasetError, match="only one class"):
        scan(ScanConfig(str(root)))


def test_no_usable_images_is_an_error(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "x.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match="no usable images") as caught:
        scan(ScanConfig(str(tmp_path / "data")))
    assert len(caught.value.scan_result.unusable) == 2


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        scan(ScanConfig(str(tmp_path / "nowhere")))


def test_presplit_layout_is_detected(tmp_path):
    root = make_presplit_dataset(tmp_path / "book", counts=(4, 2, 3))
    result = scan(ScanConfig(str(root)))
    assert result.layout == "split"
    assert result.counts == {"train": {"circle": 4, "square": 4}, "validation": {"circle": 2, "square": 2},
                             "test": {"circle": 3, "square": 3}}


def test_progress_is_reported_and_cancel_is_obeyed(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=6)
    events = []
    scan(ScanConfig(str(root)), emit=events.append)
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].done == progress[-1].total == 12
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        scan(ScanConfig(str(root)), cancel=token)


def test_fingerprint_changes_with_the_files(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=3)
    first = scan(ScanConfig(str(root))).fingerprint
    assert scan(ScanConfig(str(root))).fingerprint == first
    (root / "circle" / "circle_000.png").rename(root / "circle" / "renamed.png")
    assert scan(ScanConfig(str(root))).fingerprint != first


def test_size_summary_uses_upright_sizes(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=2, size=32)
    ODD_FILE_WRITERS["exif-rotated"](root / "circle")
    summary = scan(ScanConfig(str(root))).size_summary
    assert summary["count"] == 5 and summary["exif_rotated"] == 1
    assert summary["width"]["min"] == 20 and summary["height"]["max"] == 40
