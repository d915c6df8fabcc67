"""``convscope study`` and ``convscope demo``: the five ways to train of DLwP chapter 5 on one frozen split, compared."""

from __future__ import annotations

import argparse

from engine.commands.common import cancel_on_interrupt, human_sink, json_event_sink, say
from engine.events import Event, StudyRungFinished, StudyRungStarted


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "study", help="train the book's five rungs on one frozen split and compare them (paired tests)",
        description="Scratch, scratch+augmentation, cached features, features+augmentation and fine-tuning, "
                    "each an ordinary run folder, all tested on the same images; study.json and summary.md "
                    "hold the comparison (accuracy with 95% CI, per-class F1, McNemar's exact test).")
    p.add_argument("--data", metavar="DIR", help="dataset folder: one sub-folder per class, or train/validation/test")
    p.add_argument("--profile", choices=("quick", "full"), default="quick",
                   help="quick: 64/96 px and few epochs; full: the base's own input size, more epochs (default quick)")
    p.add_argument("--base", metavar="NAME", default="efficientnet-lite0",
                   help="pretrained base of the transfer rungs (default efficientnet-lite0; see `convscope bases`)")
    p.add_argument("--out", metavar="DIR", help="study folder to create (default: a dated folder in the runs folder)")
    p.add_argument("--resume", metavar="DIR", help="continue an interrupted study; finished rungs are not retrained")
    p.add_argument("--no-tta", dest="tta", action="store_false",
                   help="skip the test-time-augmentation column (each test image and its mirror image, scores "
                        "averaged): turn it off where a mirror image changes the class (text, digits)")
    p.add_argument("--json-events", action="store_true", help="print one JSON event per line instead of progress text")
    p.set_defaults(func=_cmd_study)
    p = subparsers.add_parser(
        "demo", help="the quick study on the bundled demo data (Pullover vs Coat), then the sample photos",
        description="`convscope study --profile quick` on resources/demo/pullover-vs-coat (a few minutes on "
                    "2 cores), then ImageNet predictions of the bundled sample photos; the output folder is a "
                    "study folder (study.json, summary.md, report.html, rungs/) plus demo.json.")
    p.add_argument("--out", metavar="DIR", help="output folder to create (default: a dated demo folder in the runs folder)")
    p.add_argument("--json-events", action="store_true", help="print one JSON event per line instead of progress text")
    p.set_defaults(func=_cmd_demo)


def _human(event: Event) -> None:
    if isinstance(event, StudyRungStarted):
        say(f"== rung {event.index}/{event.total} {event.name}: {event.status} ({event.run_dir})")
    elif isinstance(event, StudyRungFinished):
        r = event.result
        say(f"== rung {event.index}/{event.total} {event.name}: test accuracy {r['test_accuracy']:.3f} "
            f"(95% CI {r['ci95'][0]:.3f}–{r['ci95'][1]:.3f})")
    else:
        human_sink(event)


def _cmd_study(args: argparse.Namespace) -> int:
    from engine.errors import InvalidSetting  # noqa: PLC0415
    from engine.study.config import StudyConfig  # noqa: PLC0415
    from engine.study.job import run  # noqa: PLC0415

    if not args.data and not args.resume:
        raise InvalidSetting("no data folder given", "pass --data DIR (or --resume DIR)")
    config = StudyConfig(data=args.data or "", profile=args.profile, base=args.base, out=args.out,
                         resume=args.resume, tta=args.tta)
    sink = json_event_sink if args.json_events else _human
    with cancel_on_interrupt() as token:
        result = run(config, sink, token)
    return _finish(args, result.folder, result.status)


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine.study.demo import run_demo  # noqa: PLC0415

    sink = json_event_sink if args.json_events else _human
    with cancel_on_interrupt() as token:
        result = run_demo(args.out, sink, token)
    if not args.json_events and result.samples:
        say("sample photos, ImageNet top 1: " + ", ".join(f"{s['file']} {s['top'][0]['class']}" for s in result.samples))
    return _finish(args, result.folder, result.status)


def _finish(args: argparse.Namespace, folder: str, status: str) -> int:
    """Print the summary table (or how to resume); the exit status: 0 finished, 130 cancelled."""
    from pathlib import Path  # noqa: PLC0415

    from engine.study.job import SUMMARY  # noqa: PLC0415

    if not args.json_events:
        if status == "cancelled":
            say(f"cancelled: continue with `convscope study --resume {folder}`")
        else:
            say((Path(folder) / SUMMARY).read_text(encoding="utf-8"))
            say(f"report: {Path(folder) / 'report.html'}")
    return 0 if status == "finished" else 130
