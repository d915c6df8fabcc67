"""What every benchmark page states about its machine, and interleaved rounds summarised alike.

A figure means little without the CPU it ran on: mixed precision, for one, is 2-3x faster on a CPU
with bfloat16 units and 8-13x slower on one without. ``header()`` names the CPU model, the flags
that matter here (avx2, avx512f, amx_bf16, avx512_bf16), cores, TensorFlow/Keras versions and the
load average; ``summary()`` gives the median of interleaved rounds with their range.
"""

from __future__ import annotations

import os
import platform
import statistics

FLAGS = ("avx2", "avx512f", "amx_bf16", "avx512_bf16")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load() -> str:
    """The 1/5/15-minute load averages, as `uptime` prints them."""
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def _load_says() -> str:
    """What the load average means for the figures: at most one runnable task per core over the
    last minute is a machine doing little but this benchmark."""
    try:
        one_minute = os.getloadavg()[0]
    except OSError:
        return "the load is unknown on this system."
    if one_minute <= (os.cpu_count() or 1) + 0.5:
        return "the machine was otherwise quiet (about one runnable task per core: this benchmark)."
    return ("the machine was shared with other work, so absolute times are disturbed; interleaved "
            "rounds let both sides of a ratio share the disturbance.")


def header(script: str, rounds: int | None = None) -> list[str]:
    """Markdown lines naming the machine; call at the end of a run so the load covers it."""
    from engine.precision import this_cpu_flags  # noqa: PLC0415
    from engine.tf_runtime import keras, tf  # noqa: PLC0415

    flags = this_cpu_flags()
    has = ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in FLAGS)
    lines = [
        f"Measured by `{script}` on **{cpu_model()}** ({has}), {os.cpu_count()} cores, "
        f"TensorFlow {tf().__version__}, Keras {keras().__version__}, Python {platform.python_version()}.",
        f"Load average at the end (1/5/15 min): {load()} — {_load_says()}"
        + (f" Ratios come from interleaved rounds ({rounds}: median, range in brackets)." if rounds else ""),
    ]
    return lines


def summary(values, fmt: str = "{:.2f}") -> str:
    """"median [min–max]" of the rounds' values."""
    values = list(values)
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


def append_json_rows(path, rows) -> None:
    """Append ``rows`` to ``path`` as JSON lines, atomically: one file gathers several invocations."""
    import json  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from engine import atomic  # noqa: PLC0415

    out = Path(path)
    before = out.read_text(encoding="utf-8") if out.is_file() else ""
    atomic.write_text(out, before + "".join(json.dumps(row) + "\n" for row in rows))
