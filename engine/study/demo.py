"""The demo: the quick study (the book's five ways to train, compared) on the bundled Pullover-vs-Coat data.

``convscope demo`` is ``convscope study --profile quick`` on ``resources/demo/pullover-vs-coat``
(1,000 / 500 / 500 images per class, already split), then the bundled sample photos
(``resources/samples``) classified by the ImageNet model, so a first run shows both what the
book's ladder gives on small data and that the pretrained base works offline. The output folder is
an ordinary study folder (``study.json``, ``summary.md``, ``report.html``, ``rungs/``, ``split/``;
``convscope study --resume`` continues it) plus ``demo.json``: the study's status and per-rung test
accuracy, the sample photos' top 3 and the demo's wall time.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import atomic
from engine.errors import DatasetError
from engine.events import CancelToken, JobCancelled, Sink, Status, discard
from engine.paths import resources_dir

DEMO_DATA = "demo/pullover-vs-coat"
DEMO_FILE = "demo.json"
SAMPLE_EXTENSIONS = (".jpg", ".jpeg", ".png")


@dataclass
class DemoResult:
    folder: str  # the study folder
    status: str  # "finished" | "cancelled"
    test_accuracy: dict[str, float] = field(default_factory=dict)  # per finished rung
    samples: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def demo_data_dir() -> Path:
    path = resources_dir() / DEMO_DATA
    if not path.is_dir():
        raise DatasetError(f"the demo data folder '{path}' is missing",
                           "reinstall ConvScope (the demo data ships in resources/demo)")
    return path


def run_demo(out: str | Path | None = None, emit: Sink = discard, cancel: CancelToken | None = None,
             *, data: str | Path | None = None, study: dict[str, Any] | None = None) -> DemoResult:
    """The quick study into ``out`` (default: a dated ``demo_…`` folder in the user's runs folder).

    ``data`` replaces the bundled data and ``study`` adds StudyConfig settings (tests: a tiny base,
    one epoch, small images).
    """
    from engine.study.config import StudyConfig  # noqa: PLC0415
    from engine.study.job import run  # noqa: PLC0415

    started = time.perf_counter()
    if out is None:
        from engine.paths import default_runs_dir  # noqa: PLC0415

        out = default_runs_dir() / time.strftime("demo_%Y-%m-%d_%H%M%S")
    config = StudyConfig(data=str(data if data is not None else demo_data_dir()), profile="quick", out=str(out))
    result = run(dataclasses.replace(config, **(study or {})), emit, cancel)
    samples: list[dict[str, Any]] = []
    status = result.status
    if status == "finished":
        try:
            samples = _predict_samples(emit, cancel)
        except JobCancelled:
            status = "cancelled"
    demo = DemoResult(folder=result.folder, status=status, samples=samples,
                      test_accuracy={r["name"]: r["test_accuracy"] for r in result.rungs if r["status"] == "finished"},
                      seconds=round(time.perf_counter() - started, 1))
    atomic.write_json(Path(result.folder) / DEMO_FILE, demo.to_dict())
    emit(Status(f"demo {status} in {demo.seconds:.0f} s: {Path(result.folder) / 'report.html'}"))
    return demo


def _predict_samples(emit: Sink, cancel: CancelToken | None) -> list[dict[str, Any]]:
    from engine.models.loading import load_model  # noqa: PLC0415
    from engine.predict import predict_images  # noqa: PLC0415

    folder = resources_dir() / "samples"
    paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in SAMPLE_EXTENSIONS) if folder.is_dir() else []
    if not paths:
        return []
    if cancel is not None:
        cancel.raise_if_cancelled()
    emit(Status(f"demo: classifying {len(paths)} sample photos with the ImageNet model"))
    loaded = load_model("efficientnet-lite0")
    return [{"file": Path(p.path).name,
             "top": [{"class": name, "probability": round(float(prob), 4)} for _, name, prob in p.top]}
            for p in predict_images(loaded, paths, top_k=3)]
