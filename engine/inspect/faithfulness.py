"""How far to trust a heatmap: deletion/insertion curves, ROAD, two baselines, all in few forward passes.

- **Deletion / insertion** (Petsiuk et al., RISE, 2018): the pixels are removed (set to black) or
  revealed (onto a blurred copy) in order of heat, in ``steps`` equal steps, and the class
  probability recorded; the area under each curve (fraction removed 0..1 on x) summarises it: a
  faithful map has a low deletion AUC and a high insertion AUC.
- **ROAD** (Rong et al., 2022): removed pixels are imputed from their neighbours with noise
  (:mod:`engine.inspect.imputation`) instead of a constant, most relevant first (MoRF, low is
  faithful) and least relevant first (LeRF, high is faithful), 0..95% removed.
- **Baselines** on the same image: a random map (uniform noise at the map's own resolution,
  upsampled) and a centred Gaussian blob; without them a number means little. They get the
  deletion and insertion curves (ROAD's imputation is kept for the map: it is the costliest step).

Every perturbed image of every curve — the map's and both baselines' — goes into the same full
batches of ``batch_size`` through the compiled image scorer of :mod:`engine.inspect.cam.methods`;
the ends the curves share (the photo, the black image, the blurred copy) are scored once, and a full
batch is scored in a worker thread while the next images are built. ``batch_size=1`` is the
one-pass-per-step reference the benchmark compares against (`bench/bench_faithfulness.py`: on 2 CPU
cores the model's throughput barely grows with the batch, so batching saves little; ROAD's
imputation and the forward passes are the panel's cost). Ties in the heat (a ReLU'd map is often
flat zero) are broken by a seeded random order, and the random stream is drawn in a fixed order
(the map's tie-break, ROAD's noise, the random map, the baselines' tie-breaks), so the result is
reproducible whatever the batch size.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from engine.errors import InvalidSetting, check_at_least
from engine.inspect import imputation
from engine.inspect.cam.methods import INPUT, build_passes

BLUR_SIGMA = 5.0  # RISE's insertion start: the image under a Gaussian blur (their σ = 5 at 224 px)
VERDICT_FRACTION = 0.10


@dataclass(frozen=True)
class FaithfulnessConfig:
    steps: int = 20
    road: bool = True
    baselines: bool = True
    batch_size: int = 8  # images a forward pass: EfficientNet-Lite0 on 2 cores was fastest an image at 8 (bench)
    seed: int = 0

    def validate(self) -> None:
        if not 2 <= self.steps <= 200:
            raise InvalidSetting(f"faithfulness steps {self.steps} out of range", "use 2 to 200 steps")
        check_at_least("batch size", self.batch_size)


@dataclass(frozen=True)
class Curve:
    fractions: np.ndarray = field(repr=False)  # share of pixels removed (deletion, ROAD) or revealed (insertion)
    scores: np.ndarray = field(repr=False)  # the class probability at each fraction

    @property
    def auc(self) -> float:
        return float(np.trapezoid(self.scores, self.fractions))

    def at(self, fraction: float) -> float:
        return float(np.interp(fraction, self.fractions, self.scores))

    def to_dict(self) -> dict:
        return {"auc": self.auc, "fractions": [round(float(f), 4) for f in self.fractions],
                "scores": [float(s) for s in self.scores]}


@dataclass(frozen=True)
class MapScores:
    deletion: Curve
    insertion: Curve
    road_morf: Curve | None = None
    road_lerf: Curve | None = None

    def drop_at(self, fraction: float = VERDICT_FRACTION) -> float:
        """Relative fall of the class probability once the top ``fraction`` of the map is deleted."""
        start = float(self.deletion.scores[0])
        return (start - self.deletion.at(fraction)) / start if start > 0 else 0.0

    def to_dict(self) -> dict:
        data = {"deletion_auc": self.deletion.auc, "insertion_auc": self.insertion.auc,
                "drop_at_10_percent": self.drop_at()}
        if self.road_morf is not None and self.road_lerf is not None:
            data.update(road_morf_auc=self.road_morf.auc, road_lerf_auc=self.road_lerf.auc,
                        road_gap=self.road_lerf.auc - self.road_morf.auc)
        return data


@dataclass(frozen=True)
class Faithfulness:
    explained: MapScores
    baselines: dict = field(default_factory=dict)  # "random" / "blob" → MapScores
    probability: float = 0.0  # the class probability on the unperturbed image

    def verdict(self) -> str:
        text = (f"removing the top {VERDICT_FRACTION:.0%} hottest pixels drops the score by "
                f"{self.explained.drop_at():.0%}")
        if "random" in self.baselines:
            text += f"; a random map: {self.baselines['random'].drop_at():.0%}"
        return text

    def to_dict(self) -> dict:
        return {"probability": self.probability, "verdict": self.verdict(), **self.explained.to_dict(),
                "curves": {"deletion": self.explained.deletion.to_dict(),
                           "insertion": self.explained.insertion.to_dict()},
                "baselines": {name: scores.to_dict() for name, scores in self.baselines.items()}}


# ----------------------------------------------------------------------------------------------
# maps and orders


def random_map(shape: tuple[int, int], low_res: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Uniform noise at ``low_res`` (the explained map's own resolution), upsampled to ``shape``."""
    import cv2  # noqa: PLC0415

    noise = rng.random(low_res).astype(np.float32)
    return cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def centred_blob(shape: tuple[int, int]) -> np.ndarray:
    height, width = shape
    sigma = 0.25 * min(height, width)
    yy, xx = np.mgrid[:height, :width]
    return np.exp(-(((yy - (height - 1) / 2) ** 2 + (xx - (width - 1) / 2) ** 2) / (2 * sigma**2))).astype(np.float32)


def heat_order(heatmap: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flat pixel indices, hottest first; ties in a seeded random order."""
    flat = np.asarray(heatmap, np.float64).ravel()
    return np.lexsort((rng.random(flat.size), -flat))


def _counts(fractions: np.ndarray, n: int) -> np.ndarray:
    return np.round(fractions * n).astype(int)


class _Batches:
    """Collects the perturbed images of every curve and scores them ``batch_size`` at a time, so the
    passes are full whichever curve an image belongs to; an image added under a ``key`` (the photo,
    the black image, the blurred copy: the ends the curves share) is scored once. A full batch is
    scored in a worker thread while the next images are built (TensorFlow, OpenCV and the sparse
    solve release the GIL)."""

    def __init__(self, score, batch_size: int, cancel=None, timings: dict | None = None):
        self.score, self.batch_size, self.cancel, self.timings = score, batch_size, cancel, timings
        self.pending: list[np.ndarray] = []
        self.scored: list = []  # futures of the scores of each batch, in order
        self.count = 0
        self.keys: dict[str, int] = {}
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="faithfulness")

    def add(self, image: np.ndarray, key: str | None = None) -> int:
        if key is not None and key in self.keys:
            return self.keys[key]
        self.pending.append(image)
        self.count += 1
        if key is not None:
            self.keys[key] = self.count - 1
        if len(self.pending) >= self.batch_size:
            self.flush()
        return self.count - 1

    def flush(self) -> None:
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        if self.pending:
            self.scored.append(self.worker.submit(self._timed_score, np.stack(self.pending)))
            self.pending = []

    def _timed_score(self, images: np.ndarray) -> np.ndarray:
        with _timed(self.timings, "forward passes"):
            return self.score(images)

    def scores(self) -> np.ndarray:
        self.flush()
        return np.concatenate([future.result() for future in self.scored]) if self.scored else np.zeros(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.worker.shutdown(wait=True, cancel_futures=True)


class _timed:
    """Adds the time spent in the block to ``timings[phase]`` (nothing when ``timings`` is None)."""

    def __init__(self, timings: dict | None, phase: str):
        self.timings, self.phase = timings, phase

    def __enter__(self):
        self.started = time.perf_counter()

    def __exit__(self, *exc):
        if self.timings is not None:
            self.timings[self.phase] = self.timings.get(self.phase, 0.0) + time.perf_counter() - self.started


def _plan_curves(batches: _Batches, image: np.ndarray, blurred: np.ndarray, order: np.ndarray, steps: int,
                 road: bool, rng: np.random.Generator, phase: str) -> dict:
    """Adds one map's curve images to ``batches``: name → (fractions, the images' indices)."""
    height, width = image.shape[:2]
    n = height * width
    fractions = np.linspace(0.0, 1.0, steps + 1)
    flat, blur_flat = image.reshape(n, -1), blurred.reshape(n, -1)
    deletion, insertion = [], []
    for count in _counts(fractions, n):
        if count == 0:
            deletion.append(batches.add(image, "photo"))
            insertion.append(batches.add(blurred, "blurred"))
            continue
        if count == n:
            deletion.append(batches.add(np.zeros_like(image), "black"))
            insertion.append(batches.add(image, "photo"))
            continue
        with _timed(batches.timings, phase):
            taken = order[:count]
            gone = flat.copy()
            gone[taken] = 0.0
            shown = blur_flat.copy()
            shown[taken] = flat[taken]
        deletion.append(batches.add(gone.reshape(image.shape)))
        insertion.append(batches.add(shown.reshape(image.shape)))
    plan = {"deletion": (fractions, deletion), "insertion": (fractions, insertion)}
    if road:
        road_fractions = np.arange(steps) / steps  # 0 .. 95 %: with nothing kept there is nothing to impute from
        for name, ranking in (("road_morf", order), ("road_lerf", order[::-1])):
            indices = []
            for count in _counts(road_fractions, n):
                if count == 0:  # nothing removed: the photo itself (and no noise drawn)
                    indices.append(batches.add(image, "photo"))
                    continue
                with _timed(batches.timings, "ROAD imputation"):
                    removed = np.zeros(n, bool)
                    removed[ranking[:count]] = True
                    imputed = imputation.impute(image, removed.reshape(height, width), rng)
                indices.append(batches.add(imputed))
            plan[name] = (road_fractions, indices)
    return plan


def perturbations(image: np.ndarray, order: np.ndarray, steps: int, road: bool, rng: np.random.Generator):
    """The curves' images, in blocks: (name, fractions, images (k, H, W, C))."""
    import cv2  # noqa: PLC0415

    image = np.asarray(image, np.float32)
    with _Batches(lambda images: images, batch_size=1) as batches:
        plan = _plan_curves(batches, image, cv2.GaussianBlur(image, (0, 0), BLUR_SIGMA), order, steps, road, rng, "")
        images = batches.scores()
    for name, (fractions, indices) in plan.items():
        yield name, fractions, images[indices]


# ----------------------------------------------------------------------------------------------
# scoring


def image_scorer(model, class_index: int, input_shape, output_index: int = 0, batch_size: int = 32,
                 explain_input: int = 0, others: tuple = ()):
    """images (n, H, W, C) → the class probability of each, ``batch_size`` images per forward pass
    (``others``: (1, ...) batches of a multi-input model's other inputs, held fixed)."""
    from engine.inspect.layers import input_shapes  # noqa: PLC0415
    from engine.tf_runtime import tf  # noqa: PLC0415

    own = tuple(input_shapes(model)[explain_input][1:])
    shape = None if tuple(input_shape) == own else tuple(input_shape)
    passes = build_passes(model, INPUT, output_index, "probability", shape, explain_input)
    t = tf()
    c = t.constant(int(class_index), dtype="int32")
    rest = tuple(t.constant(np.asarray(o, np.float32)) for o in others)

    def score(images: np.ndarray) -> np.ndarray:
        out = [np.asarray(passes.score_images(t.constant(images[i:i + batch_size]), rest, c)[1])
               for i in range(0, images.shape[0], batch_size)]
        return np.concatenate(out).astype(np.float64)

    return score


def faithfulness(model, image: np.ndarray, heatmap: np.ndarray, class_index: int,
                 config: FaithfulnessConfig | None = None, output_index: int = 0,
                 low_res: tuple[int, int] | None = None, cancel=None, explain_input: int = 0,
                 others: tuple = (), timings: dict | None = None) -> Faithfulness:
    """Score ``heatmap`` (at the size of ``image``, the array the model explained) and the baselines:
    every curve image of the map and of both baselines goes through the same full batches.

    ``low_res``: the explained map's own resolution, for the random baseline (default: 7×7);
    ``timings``: phase name → seconds is added to it (the benchmark's profile)."""
    import cv2  # noqa: PLC0415

    config = config or FaithfulnessConfig()
    config.validate()
    image = np.asarray(image, np.float32)
    shape = image.shape[:2]
    if tuple(np.shape(heatmap)) != shape:
        raise InvalidSetting(f"heatmap shape {np.shape(heatmap)} differs from the image's {shape}",
                             "score the map at the size of the array the model explained")
    score = image_scorer(model, class_index, image.shape, output_index, config.batch_size, explain_input, others)
    rng = np.random.default_rng(config.seed)
    blurred = cv2.GaussianBlur(image, (0, 0), BLUR_SIGMA)
    with _Batches(score, config.batch_size, cancel, timings) as batches:
        plans = {"explained": _plan_curves(batches, image, blurred, heat_order(heatmap, rng), config.steps,
                                           config.road, rng, "curve images")}
        if config.baselines:  # the random stream as it always was: ROAD's noise, then the random map
            maps = {"random": random_map(shape, low_res or (7, 7), rng), "blob": centred_blob(shape)}
            for name, other in maps.items():
                plans[name] = _plan_curves(batches, image, blurred, heat_order(other, rng), config.steps, False,
                                           rng, "baselines' images")
        scores = batches.scores()
    curves = {which: MapScores(**{name: Curve(fractions, scores[indices])
                                  for name, (fractions, indices) in plan.items()})
              for which, plan in plans.items()}
    explained = curves.pop("explained")
    return Faithfulness(explained=explained, baselines=curves, probability=float(explained.deletion.scores[0]))
