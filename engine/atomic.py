"""Write files so that a crash or a full disk never leaves a half-written file in place of a good one.

Everything ConvScope writes goes to a temporary file in the same folder, is flushed and
fsynced, then renamed over the target (rename is atomic on one filesystem).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``.

    On any exception the temporary file is removed and ``target`` is left untouched. A full disk
    (or quota) becomes :class:`engine.errors.DiskFullError` naming ``target`` and the fix.
    """
    target = Path(target)
    tmp: Path | None = None
    try:
        with full_disk_names(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix + ".tmp",
                dir=target.parent,
            )
            os.close(fd)
            tmp = Path(tmp_name)
            yield tmp
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def full_disk_names(target: Path) -> Iterator[None]:
    """Turn "no space left" raised inside into :class:`DiskFullError` naming ``target``; re-raise the rest."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - only "disk full" is translated; the rest re-raised
        if _disk_full(error):
            raise _disk_full_error(target) from error
        raise


_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _disk_full(error: BaseException | None) -> bool:
    """True when ``error`` (or an exception it wraps, as libraries do) is "no space left"."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, OSError) and error.errno in _FULL:
            return True
        if "No space left on device" in str(error):  # TensorFlow's writers raise their own types
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


_DISK_FULL_FIX = "free disk space (or choose a folder on another disk) and try again"


def _disk_full_error(target: Path):
    from engine.errors import DiskFullError  # noqa: PLC0415

    return DiskFullError(f"disk full: could not write '{target}' (no space left on the device holding "
                         f"'{target.parent}'); the previous '{target.name}', if any, is unchanged", _DISK_FULL_FIX)


# atomic_path's temp names: "." + target name + "." + mkstemp's 8 random characters + suffix
_TEMP_NAME = re.compile(r"\.(?P<target>[^/]+\.[^./]+)\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)*")


def leftover_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Temp files :func:`atomic_path` left in ``folder`` because its process was killed mid-write
    (they are never renamed over anything, so they hold nothing the folder needs)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and _TEMP_NAME.fullmatch(p.name))


def make_folder(path: str | os.PathLike, *, exist_ok: bool = False) -> Path:
    """``mkdir -p``; a full disk becomes :class:`engine.errors.DiskFullError` naming the folder."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=exist_ok)
    except OSError as error:
        if not _disk_full(error):
            raise
        from engine.errors import DiskFullError  # noqa: PLC0415

        raise DiskFullError(f"disk full: could not create the folder '{path}' (no space left on its device)",
                            _DISK_FULL_FIX) from error
    return path


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike, *, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``target``; on success it becomes ``target``.

    On any exception the temporary folder is removed and ``target`` is left as it was. An existing
    ``target`` is refused (:class:`FileExistsError`) unless ``replace``; then it is swapped out only
    after the new folder is complete. The body may move the folder away itself (e.g. to keep a
    failed result under another name); then nothing is published.
    """
    target = Path(target)
    stage: Path | None = None
    try:
        with full_disk_names(target):
            make_folder(target.parent, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
            yield stage
            if stage.exists():
                publish_folder(stage, target, replace=replace)
    finally:
        if stage is not None and stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def publish_folder(source: Path, target: Path, *, replace: bool = False) -> None:
    """Rename the complete folder ``source`` to ``target`` (same filesystem). An existing ``target``
    is moved aside first and removed only once ``source`` is in place (put back if that fails)."""
    if not (target.exists() or target.is_symlink()):
        os.replace(source, target)
        return
    if not replace:
        raise FileExistsError(errno.EEXIST, "destination exists", str(target))
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rmdir(old)
    os.replace(target, old)
    try:
        os.replace(source, target)
    except BaseException:
        os.replace(old, target)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink()


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Atomically make ``target`` a byte-for-byte copy of ``source``."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def write_text(target: str | os.PathLike, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_with(target: str | os.PathLike, save: Callable[[Path], None], suffix: str | None = None) -> None:
    """Atomically save through a library function that writes to a path (e.g. ``model.save``).

    ``suffix`` keeps the extension a library insists on (Keras wants ``.keras``).
    """
    with atomic_path(target, suffix=suffix) as tmp:
        save(tmp)
