"""Hostile `.keras` archives, written byte by byte (``zipfile`` refuses to write a lie).

Each maker takes the entries of a genuine tiny `.keras` file (``genuine_entries``) and the path to
write. Inflating entries are built from one deflate segment of zeros ended by a full flush, repeated:
a segment can follow any other, so 4 GB of inflated zeros cost 4 MB and no 4 GB loop here.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

SEGMENT_BYTES = 16 << 20
# Run as ``python -c LOAD_AND_REPORT FILE``: loads FILE the way `convscope predict` does and prints
# one JSON line with the message (None when it loaded), the seconds and its own peak resident memory.
LOAD_AND_REPORT = """
import json, resource, sys, time
start = time.monotonic()
from engine.errors import ConvScopeError
from engine.models.loading import load_model
try:
    loaded = load_model(sys.argv[1])
    message, parameters = None, loaded.model.count_params()
except ConvScopeError as error:
    message, parameters = str(error), None
# VmHWM, not ru_maxrss: Linux carries the parent's resident size at fork into the child's ru_maxrss
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
try:
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(json.dumps({"message": message, "parameters": parameters, "seconds": time.monotonic() - start,
                  "peak_rss": peak, "tensorflow": "tensorflow" in sys.modules}))
"""


@dataclass(frozen=True)
class RawEntry:
    name: str
    stored: bytes  # the bytes in the file, as they are
    method: int  # 0 stored, 8 deflate
    declared_size: int  # what the directory says it inflates to
    crc: int


def stored_entry(name: str, data: bytes) -> RawEntry:
    return RawEntry(name, data, 0, len(data), zlib.crc32(data))


def zeros_bomb(segments: int) -> bytes:
    """A raw deflate stream inflating to ``segments`` × 16 MiB of zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(bytes(SEGMENT_BYTES)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return segment * segments + b"\x03\x00"  # a final, empty fixed-Huffman block


def write_zip(path: Path, entries: list[RawEntry]) -> Path:
    body, directory = bytearray(), bytearray()
    for entry in entries:
        name = entry.name.encode()
        offset = len(body)
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, entry.method, 0, 0x21, entry.crc,
                            len(entry.stored), entry.declared_size, len(name), 0) + name + entry.stored
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, entry.method, 0, 0x21, entry.crc,
                                 len(entry.stored), entry.declared_size, len(name), 0, 0, 0, 0, 0, offset) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), len(body), 0)
    path.write_bytes(bytes(body + directory + end))
    return path


def genuine_entries(keras_file: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(keras_file) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _genuine_except(entries: dict[str, bytes], *names: str) -> list[RawEntry]:
    return [stored_entry(name, data) for name, data in entries.items() if name not in names]


def inflating_entry(entries: dict[str, bytes], path: Path) -> Path:
    """model.weights.h5 is ~4 MB stored and honestly declares the ~4 GB it inflates to."""
    bomb = zeros_bomb(238)  # 3.99 GB: under the 4 GiB a zip without zip64 can declare
    return write_zip(path, _genuine_except(entries, "model.weights.h5")
                     + [RawEntry("model.weights.h5", bomb, 8, 238 * SEGMENT_BYTES, 0)])


def lying_sizes(entries: dict[str, bytes], path: Path) -> Path:
    """The directory says model.weights.h5 inflates to 1 MiB (ratio under 1, CRC of 1 MiB of zeros
    right), but the stream goes on to 4 GB: a reader trusting the directory stops, ours must too."""
    bomb = zeros_bomb(238)
    return write_zip(path, _genuine_except(entries, "model.weights.h5")
                     + [RawEntry("model.weights.h5", bomb, 8, 1 << 20, zlib.crc32(bytes(1 << 20)))])


def many_entries(entries: dict[str, bytes], path: Path, count: int = 60_000) -> Path:
    """The genuine entries plus 60,000 empty ones (a plain zip holds at most 65,535): zipfile would parse each."""
    padding = [stored_entry(f"assets/{index}", b"") for index in range(count)]
    return write_zip(path, _genuine_except(entries) + padding)


def path_traversal(entries: dict[str, bytes], path: Path, name: str = "../../outside.txt") -> Path:
    return write_zip(path, _genuine_except(entries) + [stored_entry(name, b"written outside\n")])


def giant_layer(entries: dict[str, bytes], path: Path, units: int = 10**12) -> Path:
    """The genuine model with its last Dense layer declaring ``units`` outputs (weights untouched)."""
    config = json.loads(entries["config.json"])
    layers = config["config"]["layers"]
    dense = next(layer for layer in reversed(layers) if layer["class_name"] == "Dense")
    dense["config"]["units"] = units
    changed = json.dumps(config).encode()
    return write_zip(path, _genuine_except(entries, "config.json") + [stored_entry("config.json", changed)])


def many_layers(entries: dict[str, bytes], path: Path, count: int = 6_000) -> Path:
    """The genuine model with ``count`` more copies of its Dense layer listed (minutes of building)."""
    config = json.loads(entries["config.json"])
    layers = config["config"]["layers"]
    layers.extend([layers[-1]] * count)
    changed = json.dumps(config).encode()
    return write_zip(path, _genuine_except(entries, "config.json") + [stored_entry("config.json", changed)])


def oversized_weights(entries: dict[str, bytes], path: Path, size: int = 40 << 20) -> Path:
    """Honest sizes, ratio 1, but a weights entry of 40 MB for a model of a few kB."""
    data = entries["model.weights.h5"] + bytes(size)
    return write_zip(path, _genuine_except(entries, "model.weights.h5") + [stored_entry("model.weights.h5", data)])


HOSTILE_MAKERS = {
    "inflating-entry": inflating_entry,
    "lying-sizes": lying_sizes,
    "many-entries": many_entries,
    "path-traversal": path_traversal,
    "giant-layer": giant_layer,
    "many-layers": many_layers,
    "oversized-weights": oversized_weights,
}
