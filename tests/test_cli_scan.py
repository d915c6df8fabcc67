"""`convscope scan`: a readable report, exit 0 with bad files listed, exit 2 with one line when unusable."""

from __future__ import annotations

import json

from engine.cli import main
from imagegen import BAD_FILE_WRITERS, damaged_jpeg_bytes, make_presplit_dataset, make_shapes_dataset, write_ignored_files


def test_report_lists_classes_counts_and_unusable_files(tmp_path, capsys):
    root = make_shapes_dataset(tmp_path / "data", per_class=3, size=24)
    BAD_FILE_WRITERS["truncated-jpeg"][0](root / "circle")
    BAD_FILE_WRITERS["zero-bytes"][0](root / "square")
    write_ignored_files(root / "square")
    assert main(["scan", str(root)]) == 0
    out = capsys.readouterr().out
    assert "circle" in out and "square" in out and "Usable images: 6" in out
    assert "truncated.jpg: truncated" in out and "empty.png: empty file (0 bytes)" in out
    assert "Ignored (hidden, not images, or outside class folders): 6" in out


def test_damaged_jpeg_is_listed_as_decoded_with_warnings_text_and_json(tmp_path, capsys):
    root = make_shapes_dataset(tmp_path / "data", per_class=3, size=24)
    (root / "square" / "damaged.jpg").write_bytes(damaged_jpeg_bytes())
    assert main(["scan", str(root)]) == 0
    out = capsys.readouterr().out
    assert "Usable images: 7" in out and "Unusable files: none" in out
    assert "Decoded with warnings (1), kept in the dataset:" in out
    assert "  square/damaged.jpg: corrupt JPEG data: invalid marker 0x35" in out
    assert main(["scan", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(issue["path"], issue["kind"]) for issue in report["decoded_with_warnings"]] == [
        (str(root / "square" / "damaged.jpg"), "decoded-with-warnings")]
    assert report["unusable"] == [] and report["num_images"] == 7


def test_json_report(tmp_path, capsys):
    root = make_presplit_dataset(tmp_path / "book", counts=(2, 1, 1), size=16)
    assert main(["scan", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layout"] == "split" and report["classes"] == ["circle", "square"]
    assert report["counts"]["validation"] == {"circle": 1, "square": 1}


def test_missing_folder_exits_2_with_one_line(tmp_path, capsys):
    assert main(["scan", str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "does not exist" in captured.err


def test_single_class_exits_2_with_one_line(tmp_path, capsys):
    root = make_shapes_dataset(tmp_path / "data", per_class=2, size=16, classes=("circle",))
    assert main(["scan", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "only one class ('circle')" in err


def test_scan_command_does_not_load_tensorflow(tmp_path):
    import subprocess
    import sys

    root = make_shapes_dataset(tmp_path / "data", per_class=2, size=16)
    code = ("import sys\nfrom engine.cli import main\nmain(['scan', sys.argv[1]])\n"
            "sys.stderr.write(str('tensorflow' in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().endswith("False")
