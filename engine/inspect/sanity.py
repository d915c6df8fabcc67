"""Does the map depend on the model? Cascading randomisation of the top layers (Adebayo et al., 2018).

The weighted layers are randomised one more at a time from the output down — each weight tensor's
values randomly permuted, which destroys what was learned but keeps the tensor's scale (a plain
re-draw can blow BatchNorm variances up or zero them) — and the map recomputed after each stage. The
Spearman rank correlation of each new map with the original says how much it changed; a method
whose map still correlates ≥ :data:`FLAG_AT` after the last stage barely depends on what the top of
the model learned, and is flagged.

The randomised copy is a twin (``keras.models.clone_model`` of the model, cached with it, its
weights copied from the model at each check): the user's model is never modified, so other jobs
that use it meanwhile are unaffected, and the twin's compiled passes are traced once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from engine.errors import IntrospectionError
from engine.inspect.cam.compute import compute_cam
from engine.inspect.layers import list_layers, model_cache, resolve_layer

FLAG_AT = 0.5
STAGES = 3


@dataclass(frozen=True)
class SanityCheck:
    stages: list = field(default_factory=list)  # [(layers randomised so far (paths), Spearman rho)]

    @property
    def final_correlation(self) -> float:
        return self.stages[-1][1] if self.stages else float("nan")

    @property
    def flagged(self) -> bool:
        return bool(self.stages) and abs(self.final_correlation) >= FLAG_AT

    def summary(self) -> str:
        if not self.stages:
            return "sanity check: no weighted layer to randomise"
        rho = self.final_correlation
        top = len(self.stages[-1][0])
        if self.flagged:
            return (f"⚠ sanity check failed: with the top {top} weighted layers randomised the map still "
                    f"correlates {rho:.2f} with this one (Spearman) — it barely depends on what the model learned")
        return f"sanity check passed: randomising the top {top} weighted layers changes the map (Spearman {rho:.2f})"

    def to_dict(self) -> dict:
        return {"flagged": self.flagged, "threshold": FLAG_AT, "final_correlation": self.final_correlation,
                "stages": [{"randomised": list(paths), "spearman": rho} for paths, rho in self.stages]}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (ties get their average rank); 0 when either is
    constant (nothing left to rank)."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + ends - 1) / 2.0)[inverse]


def weighted_layers(model) -> list[str]:
    """Paths of the leaf layers that hold weights, input to output."""
    return [info.path for info in list_layers(model) if not info.is_model and info.params > 0]


def _twin(model):
    from engine.tf_runtime import keras  # noqa: PLC0415

    def clone():
        try:
            return keras().models.clone_model(model)
        except (ValueError, TypeError) as error:
            raise IntrospectionError(f"cannot copy model '{model.name}' for the sanity check ({error})",
                                     "the check needs a Sequential or functional model") from None

    twin = model_cache.get(model, ("sanity-twin",), clone)
    for mine, theirs in zip(twin.weights, model.weights, strict=True):  # variable to variable: no NumPy copies
        mine.assign(theirs)
    return twin


def sanity_check(model, image: np.ndarray, class_index: int, method: str, layer: str | None,
                 output_index: int = 0, target: str = "logit", stages: int = STAGES, seed: int = 0,
                 original: np.ndarray | None = None, cancel=None, explain_input: int = 0,
                 others: list | None = None, timings: dict | None = None) -> SanityCheck:
    """Randomise the top ``stages`` weighted layers one at a time (cascading) and compare the maps of
    ``image`` (the array the model explained) at the map's own resolution (``timings``: phase → seconds
    is added to it, for the benchmark's profile)."""
    started = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal started
        now = time.perf_counter()
        if timings is not None:
            timings[phase] = timings.get(phase, 0.0) + now - started
        started = now

    def cam_of(m):
        return compute_cam(m, image, class_index=class_index, layer=layer, method=method,
                           output_index=output_index, resize=False, target=target,
                           explain_input=explain_input, others=others).raw

    reference = original if original is not None else cam_of(model)
    lap("sanity: recomputed maps")
    twin = _twin(model)
    rng = np.random.default_rng(seed)
    randomised: list[str] = []
    results = []
    for path in list(reversed(weighted_layers(twin)))[:stages]:
        if cancel is not None:
            cancel.raise_if_cancelled()
        for variable in resolve_layer(twin, path).weights:
            values = np.asarray(variable.numpy())
            variable.assign(rng.permutation(values.ravel()).reshape(values.shape))
        randomised.append(path)
        lap("sanity: re-initialising")
        results.append((tuple(randomised), spearman(reference, cam_of(twin))))
        lap("sanity: recomputed maps")
    return SanityCheck(stages=results)
