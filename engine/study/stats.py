"""The study's statistics: accuracy with a 95% confidence interval, per-class F1, and McNemar's
exact test on the same test images — whether one rung is really better than another.

McNemar's test looks only at the discordant pairs: images one model gets right and the other
wrong (b and c). Under "no difference" each such image is a fair coin, so the exact p-value is a
two-sided binomial test of b successes in b + c trials at p = 0.5 (``scipy.stats.binomtest``; no
hand-written statistics). The interval is Wilson's score interval (scipy's ``proportion_ci``),
which stays inside 0..1 and is honest for accuracies near 1 on a few hundred images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ALPHA = 0.05


def accuracy_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``correct`` / ``total``."""
    from scipy.stats import binomtest  # noqa: PLC0415

    if total <= 0:
        return 0.0, 1.0
    ci = binomtest(int(correct), int(total)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class PairedTest:
    a: str
    b: str
    only_a_right: int  # images a classifies correctly and b wrongly
    only_b_right: int
    both_right: int
    both_wrong: int
    p_value: float
    verdict: str  # plain language, from a's side: "better", "worse", "not distinguishable at this test size"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mcnemar(a_name: str, a_correct: list[bool], b_name: str, b_correct: list[bool],
            alpha: float = ALPHA) -> PairedTest:
    """McNemar's exact test of two models' correctness on the SAME images (paired, in the same order)."""
    from scipy.stats import binomtest  # noqa: PLC0415

    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired test needs the same images: {len(a_correct)} against {len(b_correct)}")
    pairs = list(zip(map(bool, a_correct), map(bool, b_correct)))
    only_a = sum(1 for x, y in pairs if x and not y)
    only_b = sum(1 for x, y in pairs if y and not x)
    both = sum(1 for x, y in pairs if x and y)
    neither = len(pairs) - only_a - only_b - both
    discordant = only_a + only_b
    p_value = 1.0 if discordant == 0 else float(binomtest(only_a, discordant, 0.5).pvalue)
    if p_value < alpha:
        verdict = "better" if only_a > only_b else "worse"
    else:
        verdict = "not distinguishable at this test size"
    return PairedTest(a_name, b_name, only_a, only_b, both, neither, p_value, verdict)


def per_class_f1(per_class: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{class: F1}`` from an evaluation's per-class metrics."""
    return {name: float(values.get("f1", 0.0)) for name, values in per_class.items()}
