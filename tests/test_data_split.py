"""Splits: stratified, deterministic in the seed, frozen in the run folder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from engine.data.scan import ScanConfig, scan
from engine.data.split import load_split, make_split, save_split
from engine.errors import DatasetError, InvalidSetting
from imagegen import make_presplit_dataset, make_shapes_dataset


@pytest.fixture()
def scanned(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=20, size=16, classes=("a", "b", "c"))
    return scan(ScanConfig(str(root)))


def test_split_is_stratified_and_complete(scanned):
    split = make_split(scanned, validation_fraction=0.25, test_fraction=0.25, seed=3)
    for subset, expected in (("train", 10), ("validation", 5), ("test", 5)):
        assert Counter(label for _, label in split.subset(subset)) == {0: expected, 1: expected, 2: expected}
    everything = split.train + split.validation + split.test
    assert sorted(everything) == sorted(scanned.files["all"])


def test_same_seed_same_split_other_seed_other_split(scanned):
    first = make_split(scanned, seed=1)
    assert make_split(scanned, seed=1) == first
    assert set(make_split(scanned, seed=2).validation) != set(first.validation)


def test_split_does_not_depend_on_the_folder_location(tmp_path):
    a = scan(ScanConfig(str(make_shapes_dataset(tmp_path / "one", per_class=12, size=16))))
    b = scan(ScanConfig(str(make_shapes_dataset(tmp_path / "two", per_class=12, size=16))))
    names = lambda items: [Path(p).name for p, _ in items]  # noqa: E731
    assert names(make_split(a, seed=5).test) == names(make_split(b, seed=5).test)


def test_presplit_folder_keeps_its_subsets(tmp_path):
    result = scan(ScanConfig(str(make_presplit_dataset(tmp_path / "book", counts=(6, 2, 3), size=16))))
    split = make_split(result, seed=0)
    assert (len(split.train), len(split.validation), len(split.test)) == (12, 4, 6)
    assert all("/validation/" in path for path, _ in split.validation)


def test_presplit_without_validation_carves_it_from_train(tmp_path):
    result = scan(ScanConfig(str(make_presplit_dataset(tmp_path / "book", counts=(8, 0, 3), size=16))))
    split = make_split(result, validation_fraction=0.25)
    assert Counter(label for _, label in split.validation) == {0: 2, 1: 2}
    assert not set(split.validation) & set(split.train)


def test_save_and_load_round_trip(scanned, tmp_path):
    split = make_split(scanned, seed=4)
    folder = save_split(split, tmp_path / "run" / "split")
    assert sorted(p.name for p in folder.iterdir()) == ["classes.json", "test.txt", "train.txt", "validation.txt"]
    loaded = load_split(folder)
    assert (loaded.classes, loaded.train, loaded.validation, loaded.test) == (
        split.classes, split.train, split.validation, split.test)
    assert loaded.meta["seed"] == 4 and loaded.meta["fingerprint"] == scanned.fingerprint


def test_load_names_a_vanished_file(scanned, tmp_path):
    split = make_split(scanned, seed=0)
    folder = save_split(split, tmp_path / "run" / "split")
    gone = Path(split.test[0][0])
    gone.unlink()
    with pytest.raises(DatasetError) as caught:
        load_split(folder)
    assert gone.name in str(caught.value) and "test.txt" in str(caught.value)


def test_load_relocated_data_folder(scanned, tmp_path):
    folder = save_split(make_split(scanned), tmp_path / "run" / "split")
    moved = Path(scanned.root).rename(tmp_path / "moved")
    loaded = load_split(folder, data_root=moved)
    assert all(Path(path).is_file() and str(path).startswith(str(moved)) for path, _ in loaded.train)


@pytest.mark.parametrize("fractions", [(0.6, 0.5), (-0.1, 0.2), (0.2, 1.0)])
def test_impossible_fractions_are_refused(scanned, fractions):
    with pytest.raises(InvalidSetting):
        make_split(scanned, *fractions)
