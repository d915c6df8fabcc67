"""Check a ``.keras`` zip archive before anything inflates, extracts or builds it: it is untrusted input.

A ``.keras`` file is a zip archive of ``config.json``, ``metadata.json`` and ``model.weights.h5``
(Keras stores them uncompressed: ratio 1.0). Keras 3.15's ``load_model`` reads ``config.json`` and
the whole weights entry into memory, and extracts *every* entry to a temporary folder when there
are more than three; its own bomb guard trusts the sizes the archive declares. So, in this order,
each step costing at most what the previous one bounded:

1. the end-of-central-directory record is read by hand (the last 64 KiB of the file): too many
   entries or an oversized central directory are refused before ``zipfile`` parses a single entry;
2. every entry's name (relative, no ``..``, no drive or backslash), declared size, compression
   ratio, and the declared total against the memory this process can get
   (:func:`engine.memory.available_memory`);
3. every entry is inflated once from its stored bytes by our own ``zlib`` loop, 1 MiB at a time,
   with a hard cap at its limit — the bytes produced decide, not the declared size — and must end
   exactly at its stored size with the declared length and CRC. Keras reads the archive afterwards
   through ``zipfile``, which is not bounded on its own — on an entry whose stream outlives its
   declared size it inflates in calls of up to 2 GiB before cutting (13 s, 2.1 GB peak measured) —
   but every entry that passed here inflates to exactly its declared, limited size, so the bytes
   Keras sees are the ones bounded and checked here.

The limits are measured from real files, with wide headroom (docs/ROBUSTNESS.md has the figures):
Lite0 with its ImageNet head is 19.2 MB of weights and a 151 kB ``config.json``; a vgg16-edges
features-augmented run's ``best.keras`` holds 63 MB of weights and a 26 kB config.
No TensorFlow is imported here.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.errors import ModelFileError
from engine.memory import available_memory, format_bytes

MAX_ENTRIES = 64  # real files: 3 (assets/ entries appear only for layers with assets)
MAX_CENTRAL_DIRECTORY = 1 << 20  # 64 entries with names up to 255 bytes fit in ~20 kB
MAX_CONFIG_BYTES = 16 << 20  # config.json: 151 kB measured (Lite0 with its head); 100x headroom
MAX_METADATA_BYTES = 1 << 20  # metadata.json: 64 bytes measured
MAX_ENTRY_BYTES = 8 << 30  # any other entry: 63 MB measured; VGG16 with its 4096-wide head would be 0.55 GB
MAX_RATIO = 100  # declared / stored; Keras stores (1.0), a re-zipped config deflates ~10x
RATIO_FLOOR = 1 << 20  # entries under 1 MiB may compress as well as they like
LOAD_FACTOR = 2  # Keras holds the weights entry in memory and copies it into the variables
CHUNK = 1 << 20
_SAVE_AGAIN = "copy or save the model again"
_UNTRUSTED = "do not load files from an unknown source; ask for the model again or train it yourself"


@dataclass(frozen=True)
class ArchiveContents:
    config: dict
    metadata: dict
    weights_entry: str
    weights_bytes: int  # declared, and checked to be exactly what the entry inflates to


def read_checked(path: Path) -> ArchiveContents:
    """Check the archive at ``path`` (steps 1–3 of the module doc) and return its parsed JSON."""
    try:
        with open(path, "rb") as handle:
            _check_end_record(path, handle)
            handle.seek(0)
            with zipfile.ZipFile(handle) as archive:
                infos = archive.infolist()
                _check_declared(path, infos)
                texts = _inflate_bounded(path, handle, infos)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError,
            EOFError, ValueError, struct.error) as error:
        raise ModelFileError(f"{path}: damaged .keras file ({error})", _SAVE_AGAIN) from None
    names = {info.filename for info in infos}
    if "config.json" not in names:
        raise ModelFileError(f"{path}: a zip archive but not a Keras model (no config.json)",
                             "give a .keras file saved by Keras 3")
    weights = next((name for name in ("model.weights.h5", "model.weights.npz") if name in names), None)
    if weights is None:
        raise ModelFileError(f"{path}: the .keras archive holds no weights", "save the model again")
    try:
        config = json.loads(texts["config.json"])
        metadata = json.loads(texts["metadata.json"]) if "metadata.json" in texts else {}
    except (ValueError, RecursionError) as error:
        raise ModelFileError(f"{path}: damaged .keras file (config.json: {str(error)[:120]})", _SAVE_AGAIN) from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: malformed config.json in the .keras archive", "save the model again")
    sizes = {info.filename: info.file_size for info in infos}
    return ArchiveContents(config, metadata if isinstance(metadata, dict) else {}, weights, sizes[weights])


def _check_end_record(path: Path, handle) -> None:
    """Refuse an archive whose end record announces too many entries or too large a directory."""
    handle.seek(0, 2)
    size = handle.tell()
    tail_start = max(0, size - (1 << 16) - 22)
    handle.seek(tail_start)
    tail = handle.read()
    where = tail.rfind(b"PK\x05\x06")
    if where < 0 or len(tail) - where < 22:
        return  # not a zip: the caller's zipfile.is_zipfile check names that
    _, _, _, _, entries, directory_size, _, _ = struct.unpack("<4s4H2LH", tail[where:where + 22])
    locator = where - 20
    if locator >= 0 and tail[locator:locator + 4] == b"PK\x06\x07":
        offset = struct.unpack("<Q", tail[locator + 8:locator + 16])[0]
        handle.seek(offset)
        record = handle.read(56)
        if len(record) == 56 and record[:4] == b"PK\x06\x06":
            entries, directory_size = struct.unpack("<QQ", record[32:48])
    if entries > MAX_ENTRIES:
        raise ModelFileError(
            f"{path}: refused: the archive lists {entries:,} entries; a Keras model has 3 (at most "
            f"{MAX_ENTRIES} allowed)", _UNTRUSTED)
    if directory_size > MAX_CENTRAL_DIRECTORY:
        raise ModelFileError(
            f"{path}: refused: the archive's directory is {format_bytes(directory_size)}, far larger than a "
            f"Keras model's (at most {format_bytes(MAX_CENTRAL_DIRECTORY)} allowed)", _UNTRUSTED)


def _entry_limit(name: str) -> int:
    return {"config.json": MAX_CONFIG_BYTES, "metadata.json": MAX_METADATA_BYTES}.get(name, MAX_ENTRY_BYTES)


def _bad_name(name: str) -> bool:
    pure = PurePosixPath(name)
    return (not name or name.startswith(("/", "\\")) or "\\" in name or "\0" in name
            or ".." in pure.parts or (len(name) > 1 and name[1] == ":"))


def _check_declared(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_ENTRIES:
        raise ModelFileError(f"{path}: refused: the archive lists {len(infos):,} entries; a Keras model has 3 "
                             f"(at most {MAX_ENTRIES} allowed)", _UNTRUSTED)
    for info in infos:
        if _bad_name(info.filename):
            raise ModelFileError(f"{path}: refused: the archive holds an entry named '{info.filename[:200]}', "
                                 "which points outside the folder it would be extracted to", _UNTRUSTED)
        limit = _entry_limit(info.filename)
        if info.file_size > limit:
            raise ModelFileError(
                f"{path}: refused: archive entry '{info.filename}' declares {format_bytes(info.file_size)}, "
                f"over the {format_bytes(limit)} limit for it", _UNTRUSTED)
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(1, info.compress_size):
            raise ModelFileError(
                f"{path}: refused: archive entry '{info.filename}' would inflate {format_bytes(info.compress_size)} "
                f"into {format_bytes(info.file_size)} (a ratio of {info.file_size / max(1, info.compress_size):,.0f}; "
                f"Keras stores at 1, at most {MAX_RATIO} allowed) — a decompression bomb", _UNTRUSTED)
    total = sum(info.file_size for info in infos)
    have = available_memory()
    if have is not None and LOAD_FACTOR * total > have:
        raise ModelFileError(
            f"{path}: loading needs about {format_bytes(LOAD_FACTOR * total)} of memory (its entries declare "
            f"{format_bytes(total)}), but only {format_bytes(have)} is available",
            "close other programs, or load it on a machine with more memory")


def _inflate_bounded(path: Path, handle, infos: list[zipfile.ZipInfo]) -> dict[str, bytes]:
    """Inflate every entry from its stored bytes with a hard cap; keep the JSON entries, drop the rest."""
    texts: dict[str, bytes] = {}
    for info in infos:
        if info.is_dir():
            continue
        keep = info.filename in ("config.json", "metadata.json")
        data = _inflate_entry(path, handle, info, keep)
        if keep:
            texts[info.filename] = data
    return texts


def _inflate_entry(path: Path, handle, info: zipfile.ZipInfo, keep: bool) -> bytes:
    """Our own inflation, independent of the directory's word: output is capped at the entry's limit,
    and the stream must end exactly at the stored size with the declared length and CRC."""
    damaged = f"{path}: damaged .keras file (entry '{info.filename}' %s)"
    if info.flag_bits & 0x1:
        raise ModelFileError(damaged % "is encrypted", _SAVE_AGAIN)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ModelFileError(damaged % f"uses compression method {info.compress_type}, which Keras never writes",
                             _SAVE_AGAIN)
    handle.seek(info.header_offset)
    header = handle.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise ModelFileError(damaged % "has no local header", _SAVE_AGAIN)
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    handle.seek(info.header_offset + 30 + name_length + extra_length)
    inflater = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    limit = min(_entry_limit(info.filename), info.file_size)
    parts: list[bytes] = []
    count, crc, remaining = 0, 0, info.compress_size
    while remaining > 0 and not (inflater and inflater.eof):
        pending = handle.read(min(CHUNK, remaining))
        if not pending:
            raise ModelFileError(damaged % "is cut short", _SAVE_AGAIN)
        remaining -= len(pending)
        while pending:
            out = inflater.decompress(pending, CHUNK) if inflater else pending
            pending = inflater.unconsumed_tail if inflater and not inflater.eof else b""
            count += len(out)
            if count > limit:
                raise ModelFileError(
                    f"{path}: refused: archive entry '{info.filename}' inflates to more than the "
                    f"{format_bytes(limit)} it declares" + ("" if limit == info.file_size else " and is allowed"),
                    _UNTRUSTED)
            crc = zlib.crc32(out, crc)
            if keep:
                parts.append(out)
    ended = inflater is None or (inflater.eof and not inflater.unused_data and remaining == 0)
    if not ended or count != info.file_size or crc != info.CRC:
        raise ModelFileError(damaged % f"does not match the archive's directory: {count:,} bytes inflated, "
                             f"{info.file_size:,} declared", _SAVE_AGAIN)
    return b"".join(parts)
