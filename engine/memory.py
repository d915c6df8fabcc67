"""How much memory this process can still take: the smaller of the machine's and its cgroup's headroom.

``MemAvailable`` from ``/proc/meminfo`` is what the kernel can give without swapping; a container or
a systemd slice may allow less (cgroup v2 ``memory.max`` − ``memory.current``, v1
``memory.limit_in_bytes`` − ``memory.usage_in_bytes``; page cache the kernel can drop, the cgroup's
``inactive_file``, is counted as free, as ``docker stats`` does). The training memory warning and the
model-loading guard (``engine.models.archive``) both measure against this one figure. No TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

_UNLIMITED = 1 << 60  # cgroup v1 writes 2**63 rounded to a page for "no limit"
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_PROC_CGROUP = Path("/proc/self/cgroup")


def available_memory() -> int | None:
    """Bytes this process can still allocate, or None when nothing can be measured (not Linux)."""
    figures = [value for value in (_meminfo_available(), _cgroup_headroom()) if value is not None]
    return min(figures) if figures else None


def format_bytes(count: float) -> str:
    """``1536`` → ``1.5 KiB``; one decimal, binary units, as the rest of ConvScope prints sizes."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover - the loop always returns


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (cgroup v2 without a limit) → None


def _inactive_file(stat_path: Path) -> int:
    try:
        for line in stat_path.read_text(encoding="ascii").splitlines():
            key, _, value = line.partition(" ")
            if key in ("inactive_file", "total_inactive_file") and value.isdigit():
                return int(value)
    except OSError:
        pass
    return 0


def _cgroup_folders() -> list[tuple[str, Path]]:
    """("v2" | "v1", folder) for this process's memory cgroup and each visible ancestor: a limit on
    any of them applies (inside a container the visible root is the container's own cgroup)."""
    try:
        lines = _PROC_CGROUP.read_text(encoding="ascii").splitlines()
    except OSError:
        return []
    found: list[tuple[str, Path]] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, relative = parts
        if controllers == "":  # the v2 unified hierarchy (under unified/ on hybrid v1 systems)
            version = "v2"
            base = _CGROUP_ROOT if (_CGROUP_ROOT / "cgroup.controllers").exists() else _CGROUP_ROOT / "unified"
        elif "memory" in controllers.split(","):
            version, base = "v1", _CGROUP_ROOT / "memory"
        else:
            continue
        folder = base / relative.lstrip("/")
        if not folder.is_dir():
            folder = base
        while True:
            found.append((version, folder))
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    return found


def _cgroup_headroom() -> int | None:
    headroom = None
    for version, folder in _cgroup_folders():
        if version == "v2":
            limit, used = _read_int(folder / "memory.max"), _read_int(folder / "memory.current")
        else:
            limit, used = _read_int(folder / "memory.limit_in_bytes"), _read_int(folder / "memory.usage_in_bytes")
        if limit is None or used is None or limit >= _UNLIMITED:
            continue
        free = limit - max(0, used - _inactive_file(folder / "memory.stat"))
        headroom = free if headroom is None else min(headroom, free)
    return headroom
