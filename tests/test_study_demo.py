"""`convscope demo` is the quick study on the demo data (issue 11): five rungs, a report, the sample photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagegen import make_presplit_dataset
from test_train_tinybase import tiny_base  # noqa: F401 (fixture)

from engine.events import CancelToken, EpochEnded
from engine.study.config import RUNGS
from engine.study.demo import DEMO_FILE, demo_data_dir, run_demo

TINY = dict(max_epochs=1, image_size=48, batch_size=8)
SAMPLES = Path(__file__).parent.parent / "resources" / "samples"


@pytest.fixture
def coats(tmp_path):
    return make_presplit_dataset(tmp_path / "data", counts=(10, 4, 5), size=48, classes=("coat", "pullover"))


@pytest.mark.slow
def test_demo_is_the_quick_study_with_a_report_and_the_sample_photos(tmp_path, tiny_base, coats):
    result = run_demo(tmp_path / "demo", data=coats, study=dict(TINY, base=tiny_base))
    folder = tmp_path / "demo"
    assert result.status == "finished" and Path(result.folder) == folder
    study = json.loads((folder / "study.json").read_text())
    assert study["settings"]["profile"] == "quick" and study["settings"]["data"] == str(coats)
    assert [r["name"] for r in study["rungs"]] == list(RUNGS)
    assert all(r["status"] == "finished" and r["test_images"] == 10 for r in study["rungs"])
    assert (folder / "report.html").is_file() and (folder / "summary.md").is_file()
    demo = json.loads((folder / DEMO_FILE).read_text())
    assert demo["status"] == "finished"
    assert demo["test_accuracy"] == {r["name"]: r["test_accuracy"] for r in study["rungs"]}
    assert [s["file"] for s in demo["samples"]] == sorted(p.name for p in SAMPLES.glob("*.jpg"))
    coffee = next(s for s in demo["samples"] if s["file"] == "coffee.jpg")
    assert coffee["top"][0]["class"] in ("espresso", "cup", "coffee mug")


def test_demo_cancel_stops_resumably_without_the_samples(tmp_path, tiny_base, coats):
    token = CancelToken()

    def sink(event):
        if isinstance(event, EpochEnded):
            token.cancel()

    result = run_demo(tmp_path / "demo", sink, token, data=coats, study=dict(TINY, base=tiny_base))
    assert result.status == "cancelled"
    demo = json.loads((tmp_path / "demo" / DEMO_FILE).read_text())
    assert demo["status"] == "cancelled" and demo["samples"] == [] and demo["test_accuracy"] == {}
    study = json.loads((tmp_path / "demo" / "study.json").read_text())
    assert study["rungs"][0]["status"] == "interrupted"  # `convscope study --resume` continues it


def test_bundled_demo_data_has_the_documented_counts():
    """The data the quick study's timing was measured with (docs/benchmarks_study.md); the time
    itself is a benchmark (bench/bench_study.py), not a test."""
    root = demo_data_dir()
    for subset, count in (("train", 1000), ("validation", 500), ("test", 500)):
        for cls in ("coat", "pullover"):
            assert len(list((root / subset / cls).glob("*.png"))) == count
