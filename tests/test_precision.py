"""One precision decision for training and filter patterns, read from real /proc/cpuinfo samples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine import precision
from engine.errors import InvalidSetting

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(__file__).parent / "data" / "cpuinfo"


@pytest.fixture
def cpuinfo(monkeypatch):
    """Point the reader at one sample file, as if it were this machine's /proc/cpuinfo."""
    def use(name: str) -> None:
        monkeypatch.setattr(precision, "CPUINFO", str(SAMPLES / name))
        precision.this_cpu_flags.cache_clear()

    yield use
    precision.this_cpu_flags.cache_clear()


@pytest.mark.parametrize("sample, policy, unit", [
    ("xeon-sapphire-rapids-amx.txt", "mixed_bfloat16", "amx_bf16"),
    ("amd-epyc-zen4-avx512-bf16.txt", "mixed_bfloat16", "avx512_bf16"),
    ("amd-epyc-7763-avx2-only.txt", "float32", None),  # emulated bfloat16 ran 8-13x slower there
])
def test_auto_reads_the_cpus_bfloat16_units_from_cpuinfo(cpuinfo, sample, policy, unit):
    cpuinfo(sample)
    choice = precision.choose_precision("auto", gpu=None)
    assert choice.policy == policy
    if unit:
        assert unit in choice.reason
    else:
        assert "without bfloat16 units" in choice.reason


def test_the_avx2_only_epyc_has_avx2_and_nothing_bfloat16():
    flags = precision.cpu_flags((SAMPLES / "amd-epyc-7763-avx2-only.txt").read_text())
    assert "avx2" in flags and "avx512f" not in flags
    assert not flags & set(precision.BFLOAT16_UNIT_FLAGS)


def test_a_missing_cpuinfo_means_float32(cpuinfo):
    cpuinfo("no-such-file.txt")
    assert precision.this_cpu_flags() == frozenset()
    assert precision.choose_precision("auto", gpu=None).policy == "float32"


@pytest.mark.parametrize("capability, policy", [((9, 0), "mixed_float16"), ((7, 0), "mixed_float16"),
                                                ((6, 1), "float32")])
def test_a_gpu_decides_before_the_cpu(cpuinfo, capability, policy):
    cpuinfo("xeon-sapphire-rapids-amx.txt")  # the CPU's bfloat16 units do not matter when a GPU computes
    choice = precision.choose_precision("auto", gpu=capability)
    assert choice.policy == policy and f"{capability[0]}.{capability[1]}" in choice.reason


def test_this_cpu_only_tensorflow_reports_no_gpu():
    assert precision.gpu_compute_capability() is None


@pytest.mark.parametrize("requested", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_an_explicit_choice_is_kept(cpuinfo, requested):
    cpuinfo("amd-epyc-7763-avx2-only.txt")
    assert precision.choose_precision(requested).to_dict() == {"policy": requested, "reason": "chosen explicitly"}


def test_an_unknown_precision_names_the_choices():
    with pytest.raises(InvalidSetting, match="mixed_bfloat16"):
        precision.choose_precision("half")


def test_filter_patterns_use_the_same_decision(cpuinfo):
    from engine.inspect.filters import auto_precision

    cpuinfo("amd-epyc-zen4-avx512-bf16.txt")
    assert auto_precision(gpu=None)[0] == "bfloat16"
    cpuinfo("amd-epyc-7763-avx2-only.txt")
    assert auto_precision(gpu=None)[0] == "float32"
    cpuinfo("xeon-sapphire-rapids-amx.txt")
    assert auto_precision(gpu=(8, 0)) == ("float32", "auto: GPU with tensor cores (compute capability 8.0); "
                                                     "filter patterns have no float16 path")


def test_importing_it_loads_no_tensorflow():
    code = "import sys, engine.precision as p; p.choose_precision('auto', gpu=None); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False", out.stderr
