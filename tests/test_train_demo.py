"""`convscope demo` end to end on tiny data: two strategies trained and evaluated, samples, a report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagegen import make_presplit_dataset
from test_train_tinybase import tiny_base  # noqa: F401 (fixture)

from engine.events import CancelToken, EpochEnded
from engine.train.demo import DEMO_SETTINGS, demo_data_dir, run_demo


def _tiny_settings(base):
    return {
        "features": dict(strategy="features", base=base, image_size=32, head_pooling="avg", epochs=3,
                         patience=0, batch_size=8, learning_rate=1e-3),
        "scratch": dict(strategy="scratch", preset="book-scratch", image_size=48, augment=False, epochs=2,
                        patience=0, batch_size=8, learning_rate=1e-3),
    }


@pytest.mark.slow
def test_demo_writes_a_report_of_both_runs_and_the_samples(tmp_path, tiny_base):
    data = make_presplit_dataset(tmp_path / "data", counts=(10, 4, 5), size=48, classes=("coat", "pullover"))
    result = run_demo(tmp_path / "demo", settings=_tiny_settings(tiny_base), data=data)
    assert result.status == "finished"
    report = json.loads(Path(result.report_json).read_text())
    assert set(report["runs"]) == {"features", "scratch"}
    for run in report["runs"].values():
        assert run["test_count"] == 10 and sum(map(sum, run["confusion_matrix"])) == 10
        assert (Path(run["run_dir"]) / "metrics.json").is_file()
    samples = sorted(p.name for p in (Path(__file__).parent.parent / "resources" / "samples").glob("*.jpg"))
    assert [s["file"] for s in report["samples"]] == samples
    assert all(len(s["top"]) == 3 for s in report["samples"])
    coffee = next(s for s in report["samples"] if s["file"] == "coffee.jpg")
    assert coffee["top"][0]["class"] in ("espresso", "cup", "coffee mug")
    text = Path(result.report_md).read_text()
    assert "| features |" in text and "| scratch |" in text and "coffee.jpg" in text


def test_demo_cancel_stops_and_still_writes_a_report(tmp_path, tiny_base):
    data = make_presplit_dataset(tmp_path / "data", counts=(10, 4, 5), size=48, classes=("coat", "pullover"))
    token = CancelToken()

    def sink(event):
        if isinstance(event, EpochEnded):
            token.cancel()

    result = run_demo(tmp_path / "demo", sink, token, settings=_tiny_settings(tiny_base), data=data)
    assert result.status == "cancelled"
    report = json.loads(Path(result.report_json).read_text())
    assert list(report["runs"]) == ["features"] and report["samples"] == []


def test_bundled_demo_data_has_the_documented_counts_and_bounded_settings():
    """The data and settings the demo's timing was measured with (docs/benchmarks.md, `time convscope
    demo`); the time itself is a benchmark, not a test."""
    root = demo_data_dir()
    for subset, count in (("train", 1000), ("validation", 500), ("test", 500)):
        for cls in ("coat", "pullover"):
            assert len(list((root / subset / cls).glob("*.png"))) == count
    assert DEMO_SETTINGS["features"]["image_size"] <= 96 and DEMO_SETTINGS["scratch"]["image_size"] <= 64
    assert all(s["epochs"] <= 30 and s["patience"] > 0 for s in DEMO_SETTINGS.values())
