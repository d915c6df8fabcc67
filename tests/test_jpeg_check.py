"""The JPEG marker walk: damaged but decodable JPEGs are named, clean ones (any encoder option) are not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.data.jpeg_check import jpeg_problem
from imagegen import damaged_jpeg_bytes

CLEAN_OPTIONS = {
    "baseline": {},
    "progressive": {"progressive": True},
    "baseline-restarts": {"restart_marker_blocks": 1},
    "progressive-restarts": {"progressive": True, "restart_marker_rows": 1},
    "grayscale-optimized": {"optimize": True, "mode": "L"},
}


def _jpeg(mode: str = "RGB", **options) -> bytes:
    pixels = (np.random.default_rng(0).random((72, 96, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def _decodes(data: bytes) -> bool:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.size[0] > 0


@pytest.mark.parametrize("name", sorted(CLEAN_OPTIONS))
@pytest.mark.parametrize("tail", [b"", b"trailing bytes \xff\xd8\xff after the end-of-image marker"])
def test_clean_jpeg_is_not_flagged(name, tail):
    data = _jpeg(**CLEAN_OPTIONS[name])
    assert jpeg_problem(data + tail) is None


def test_not_a_jpeg_is_not_judged():
    assert jpeg_problem(b"\x89PNG\r\n\x1a\n" + bytes(40)) is None


def test_invalid_marker_in_scan_data_decodes_but_is_flagged():
    data = damaged_jpeg_bytes()
    assert _decodes(data)
    assert jpeg_problem(data) == "invalid marker 0x35"


def test_restart_markers_out_of_sequence_are_flagged():
    data = _jpeg(restart_marker_blocks=1)
    third = data.index(b"\xff\xd2", data.index(b"\xff\xda"))
    damaged = data[:third] + b"\xff\xd6" + data[third + 2:]
    assert _decodes(damaged)
    assert "0xD6 instead of RST2" in jpeg_problem(damaged)


def test_restart_marker_without_restart_interval_is_flagged():
    data = _jpeg()
    middle = (data.index(b"\xff\xda") + len(data)) // 2
    damaged = data[:middle] + b"\xff\xd3" + data[middle + 2:]
    assert _decodes(damaged)
    assert "RST3 in a scan without a restart interval" in jpeg_problem(damaged)


@pytest.mark.parametrize("marker", [b"\xff\xdb", b"\xff\xc4", b"\xff\xda"])
def test_garbage_before_a_marker_is_flagged(marker):
    """Between header segments (after scan data, garbage is indistinguishable from image data)."""
    data = _jpeg()
    at = data.index(marker)
    damaged = data[:at] + b"GARBAGE" + data[at:]
    assert jpeg_problem(damaged) == f"7 extraneous bytes before marker 0x{marker[1]:02X}"


@pytest.mark.parametrize("cut", [2, 40])
def test_truncated_tail_is_flagged(cut):
    assert jpeg_problem(_jpeg()[:-cut]).startswith("premature end of JPEG file")


def test_bad_segment_length_is_flagged():
    data = bytearray(_jpeg())
    dqt = data.index(b"\xff\xdb")
    data[dqt + 2:dqt + 4] = b"\x00\x01"
    assert jpeg_problem(bytes(data)) == "bad length 1 of segment 0xDB"
    data[dqt + 2:dqt + 4] = b"\xff\xf0"
    assert jpeg_problem(bytes(data)) == "bad length 65520 of segment 0xDB"
