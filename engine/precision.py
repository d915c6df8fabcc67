"""Which numeric precision pays on this machine: one decision for training and filter patterns.

``choose_precision("auto")`` picks
- ``mixed_float16`` when TensorFlow computes on a GPU with tensor cores (compute capability ≥ 7.0);
- ``mixed_bfloat16`` on a CPU with bfloat16 units: AMX (``amx_bf16``) or AVX-512-BF16 (``avx512_bf16``)
  in /proc/cpuinfo's flags. Measured: the book's convnet trains 2.2-2.3× faster on an AMD EPYC with
  AVX-512-BF16 (no AMX), 2.6× on a Xeon with AMX (docs/benchmarks_training.md);
- ``float32`` everywhere else. Without those units TensorFlow emulates bfloat16: on an AMD EPYC with
  AVX2 only, ``mixed_bfloat16`` training ran 8-13× SLOWER than float32 — so "auto" never picks it there.

An explicit choice is kept as given. Each choice comes with the reason, which the run's manifest and
the Filters tab record. Importing this module loads no TensorFlow; ``gpu_compute_capability`` imports
it only when asked to look.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from dataclasses import dataclass

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
# /proc/cpuinfo flag names of the units that run bfloat16 matrix products natively
BFLOAT16_UNIT_FLAGS = ("amx_bf16", "avx512_bf16")
TENSOR_CORE_CAPABILITY = (7, 0)  # Volta and later
CPUINFO = "/proc/cpuinfo"


@dataclass(frozen=True)
class PrecisionChoice:
    policy: str  # a Keras dtype policy name: float32, mixed_bfloat16 or mixed_float16
    reason: str

    @property
    def compute_dtype(self) -> str:
        """float32, bfloat16 or float16: the dtype the layers compute in."""
        return self.policy.removeprefix("mixed_")

    def to_dict(self) -> dict[str, str]:
        return {"policy": self.policy, "reason": self.reason}


@contextlib.contextmanager
def keras_policy(policy: str):
    """Build and train under ``policy`` (a Keras global dtype policy), then restore the previous one:
    layers take their policy when they are created, so models built inside compute in it."""
    from engine.tf_runtime import keras  # noqa: PLC0415

    mixed = keras().mixed_precision
    previous = mixed.global_policy().name
    mixed.set_global_policy(policy)
    try:
        yield
    finally:
        mixed.set_global_policy(previous)


def cpu_flags(cpuinfo_text: str) -> frozenset[str]:
    """The flags of the first processor listed in a /proc/cpuinfo text (empty if none)."""
    for line in cpuinfo_text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


@functools.lru_cache(maxsize=1)  # read once per process: the GUI asks at every run
def this_cpu_flags() -> frozenset[str]:
    try:
        with open(CPUINFO, encoding="ascii", errors="replace") as handle:
            return cpu_flags(handle.read())
    except OSError:  # not Linux: no flags known, so no bfloat16 by default
        return frozenset()


def gpu_compute_capability(load_tensorflow: bool = True) -> tuple[int, int] | None:
    """The first visible GPU's compute capability, or None (no GPU, a CPU-only TensorFlow, or
    TensorFlow not loaded yet and ``load_tensorflow`` false)."""
    if not load_tensorflow and "tensorflow" not in sys.modules:
        return None
    from engine.tf_runtime import tf  # noqa: PLC0415

    t = tf()
    gpus = t.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = t.config.experimental.get_device_details(gpus[0])
    capability = details.get("compute_capability")
    return tuple(capability) if capability else (0, 0)


def choose_precision(requested: str = "auto", *, flags: frozenset[str] | None = None,
                     gpu: tuple[int, int] | None | bool = True) -> PrecisionChoice:
    """Resolve ``requested`` (one of :data:`PRECISIONS`). ``flags``: CPU flags (default: this CPU's).
    ``gpu``: a compute capability, None for no GPU, or True to ask TensorFlow."""
    if requested not in PRECISIONS:
        from engine.errors import InvalidSetting  # noqa: PLC0415

        raise InvalidSetting(f"unknown precision '{requested}'", f"choose one of: {', '.join(PRECISIONS)}")
    if requested != "auto":
        return PrecisionChoice(requested, "chosen explicitly")
    capability = gpu_compute_capability() if gpu is True else gpu
    if capability is not None:
        if tuple(capability) >= TENSOR_CORE_CAPABILITY:
            return PrecisionChoice("mixed_float16",
                                   f"auto: GPU with tensor cores (compute capability {capability[0]}.{capability[1]})")
        return PrecisionChoice("float32", f"auto: GPU without tensor cores (compute capability "
                                          f"{capability[0]}.{capability[1]})")
    flags = this_cpu_flags() if flags is None else flags
    units = [flag for flag in BFLOAT16_UNIT_FLAGS if flag in flags]
    if units:
        return PrecisionChoice("mixed_bfloat16", f"auto: CPU with bfloat16 units ({', '.join(units)})")
    return PrecisionChoice("float32", "auto: CPU without bfloat16 units (no amx_bf16 or avx512_bf16 flag); "
                                      "emulated bfloat16 is slower than float32")
