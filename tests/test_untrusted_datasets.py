"""A dataset folder is untrusted input: special files are skipped, no file stalls a scan, odd links are safe."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.data import images
from engine.data.scan import ScanConfig, scan
from imagegen import make_shapes_dataset

REPO = Path(__file__).resolve().parents[1]


def _scan_or_fail(config: ScanConfig, seconds: float = 60):
    """Run the scan in a thread so a hang fails the test instead of freezing the suite."""
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(result=scan(config)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"the scan did not finish within {seconds} s"
    return outcome["result"]


@pytest.fixture()
def special_files(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=3)
    os.mkfifo(root / "circle" / "pipe.jpg")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "square" / "sock.png"))
    (root / "square" / "zero.jpg").symlink_to("/dev/zero")
    yield root
    server.close()


def test_pipes_sockets_and_devices_are_listed_and_skipped(special_files):
    root = special_files
    result = _scan_or_fail(ScanConfig(str(root)))
    listed = {Path(issue.path).name: (issue.kind, issue.reason) for issue in result.unusable}
    assert listed == {
        "pipe.jpg": ("not-a-regular-file", "not a regular file (a named pipe): skipped"),
        "sock.png": ("not-a-regular-file", "not a regular file (a socket): skipped"),
        "zero.jpg": ("not-a-regular-file",
                     "not a regular file (a character device): skipped"),
    }
    assert result.counts["all"] == {"circle": 3, "square": 3}


def test_convscope_scan_does_not_wait_on_a_named_pipe(special_files):
    """The user's path: `convscope scan` prints the pipe as not a regular file and exits."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "app.launcher", "scan", str(special_files)], env=env,
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-1000:]
    assert "pipe.jpg" in done.stdout and "not a regular file (a named pipe)" in done.stdout


def test_a_read_that_never_ends_is_abandoned_and_listed(tmp_path, monkeypatch):
    root = make_shapes_dataset(tmp_path / "data", per_class=3)
    stalled = root / "circle" / "stalled.png"
    stalled.write_bytes((root / "circle").joinpath(sorted(os.listdir(root / "circle"))[0]).read_bytes())
    release = threading.Event()
    real_open = images._open_file

    def hanging_open(target):
        if Path(target) == stalled:
            release.wait(120)  # a dead network mount: the read just does not return
        return real_open(target)

    monkeypatch.setattr(images, "_open_file", hanging_open)
    try:
        started = time.monotonic()
        result = _scan_or_fail(ScanConfig(str(root), file_timeout_s=0.5, workers=2))
        took = time.monotonic() - started
    finally:
        release.set()
    assert [(Path(issue.path), issue.kind) for issue in result.unusable] == [(stalled, "timed-out")]
    assert "did not finish within 0.5 s" in result.unusable[0].reason
    assert result.counts["all"] == {"circle": 3, "square": 3}  # the others were all decoded
    assert took < 30


def test_link_loops_links_to_the_class_folder_and_dangling_links(tmp_path):
    root = make_shapes_dataset(tmp_path / "data", per_class=3)
    circle = root / "circle"
    (circle / "loop_a.jpg").symlink_to(circle / "loop_b.jpg")
    (circle / "loop_b.jpg").symlink_to(circle / "loop_a.jpg")
    (circle / "itself").symlink_to(circle, target_is_directory=True)
    (circle / "up").symlink_to(root, target_is_directory=True)
    (root / "square" / "gone.png").symlink_to(tmp_path / "missing.png")
    first = sorted(p for p in (root / "square").iterdir() if p.suffix == ".png" and not p.is_symlink())[0]
    (root / "square" / "alias.png").symlink_to(first)
    result = _scan_or_fail(ScanConfig(str(root)))
    kinds = {Path(issue.path).name: issue.kind for issue in result.unusable}
    assert kinds == {"loop_a.jpg": "unreadable", "loop_b.jpg": "unreadable", "gone.png": "unreadable"}
    assert result.counts["all"] == {"circle": 3, "square": 4}  # the link to a file counts; folders are not walked twice
