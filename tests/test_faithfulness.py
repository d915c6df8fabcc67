"""Faithfulness curves, ROAD imputation and the sanity check, against explicit computations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.tf_runtime import keras

SIZE = 32


def _detector(top_kernel=None):
    """Channel 0 fires on bright pixels and raises class 0; channel 1 fires on the dark background
    and does not matter. ``top_kernel``: replace the head's kernel (e.g. a constant one)."""
    k = keras()
    inp = k.Input((SIZE, SIZE, 3))
    conv = k.layers.Conv2D(2, 1, activation="relu", name="detector")
    dense = k.layers.Dense(2, activation="softmax", name="head")
    model = k.Model(inp, dense(k.layers.GlobalAveragePooling2D()(conv(inp))), name="detector_model")
    conv.set_weights([np.stack([np.full((1, 1, 3), 1 / 300.0), np.full((1, 1, 3), -1 / 300.0)], -1)
                      .reshape(1, 1, 3, 2).astype("float32"), np.array([-0.3, 0.3], "float32")])
    kernel = np.array([[4.0, -4.0], [0.0, 0.0]], "float32") if top_kernel is None else top_kernel
    dense.set_weights([kernel, np.zeros(2, "float32")])
    return model


def _square_image():
    image = np.full((SIZE, SIZE, 3), 20.0, "float32")
    image[4:12, 18:28] = 250.0
    return image


def _small_classifier():
    k = keras()
    k.utils.set_random_seed(3)
    return k.Sequential([k.Input((SIZE, SIZE, 3)), k.layers.Rescaling(1 / 255.0),
                         k.layers.Conv2D(4, 3, activation="relu"), k.layers.GlobalAveragePooling2D(),
                         k.layers.Dense(3, activation="softmax")])


def _one_at_a_time(model, images, class_index=2):
    return [float(np.asarray(model(np.asarray(x, "float32")[None]))[0, class_index]) for x in images]


def _masks(order, counts):
    for count in counts:
        mask = np.zeros(SIZE * SIZE, bool)
        mask[order[:count]] = True
        yield mask.reshape(SIZE, SIZE)


def _deletion_insertion(model, image, order, steps):
    """RISE's curves scored one image at a time: deletion sets the hottest pixels to black,
    insertion reveals them on a blurred copy."""
    import cv2

    blurred = cv2.GaussianBlur(image, (0, 0), 5.0)
    masks = list(_masks(order, [round(step / steps * SIZE * SIZE) for step in range(steps + 1)]))
    return (_one_at_a_time(model, [np.where(m[..., None], 0.0, image) for m in masks]),
            _one_at_a_time(model, [np.where(m[..., None], image, blurred) for m in masks]))


def test_deletion_and_insertion_curves_equal_one_image_at_a_time_scoring():
    """The batched curves are the class probability of each perturbed image scored alone."""
    from engine.inspect.faithfulness import FaithfulnessConfig, faithfulness, heat_order

    model = _small_classifier()
    image = np.random.default_rng(0).uniform(0, 255, (SIZE, SIZE, 3)).astype("float32")
    heat = np.random.default_rng(1).random((SIZE, SIZE)).astype("float32")
    steps = 8
    config = FaithfulnessConfig(steps=steps, road=False, baselines=False, batch_size=3)
    result = faithfulness(model, image, heat, class_index=2, config=config)
    order = heat_order(heat, np.random.default_rng(config.seed))  # the same seeded tie-break
    want_del, want_ins = _deletion_insertion(model, image, order, steps)
    np.testing.assert_allclose(result.explained.deletion.scores, want_del, atol=1e-5)
    np.testing.assert_allclose(result.explained.insertion.scores, want_ins, atol=1e-5)
    fractions = np.linspace(0, 1, steps + 1)
    assert result.explained.deletion.auc == pytest.approx(np.trapezoid(want_del, fractions), abs=1e-5)
    assert result.probability == pytest.approx(float(np.asarray(model(image[None]))[0, 2]), abs=1e-5)


def test_road_and_both_baselines_in_shared_batches_equal_each_curve_scored_alone():
    """Every curve of the map and of both baselines goes through the same full batches, the shared
    ends scored once: the numbers are those of each image imputed and scored alone, in the seeded
    random stream's order (the map's tie-break, ROAD's noise, the random map, the baselines' tie-breaks)."""
    from engine.inspect import imputation
    from engine.inspect.faithfulness import FaithfulnessConfig, centred_blob, faithfulness, heat_order, random_map

    model = _small_classifier()
    image = np.random.default_rng(5).uniform(0, 255, (SIZE, SIZE, 3)).astype("float32")
    heat = np.random.default_rng(6).random((SIZE, SIZE)).astype("float32")
    steps = 5
    config = FaithfulnessConfig(steps=steps, batch_size=4)
    result = faithfulness(model, image, heat, class_index=2, config=config, low_res=(4, 4))
    rng = np.random.default_rng(config.seed)
    order = heat_order(heat, rng)
    counts = [round(step / steps * SIZE * SIZE) for step in range(steps)]  # 0 .. 80 % removed
    for name, ranking in (("road_morf", order), ("road_lerf", order[::-1])):
        imputed = [imputation.impute(image, mask, rng) for mask in _masks(ranking, counts)]
        np.testing.assert_allclose(getattr(result.explained, name).scores, _one_at_a_time(model, imputed),
                                   atol=1e-5, err_msg=name)
    maps = {"random": random_map((SIZE, SIZE), (4, 4), rng), "blob": centred_blob((SIZE, SIZE))}
    for name, other in maps.items():
        want_del, want_ins = _deletion_insertion(model, image, heat_order(other, rng), steps)
        np.testing.assert_allclose(result.baselines[name].deletion.scores, want_del, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(result.baselines[name].insertion.scores, want_ins, atol=1e-5, err_msg=name)
    one_pass_per_step = faithfulness(model, image, heat, 2, FaithfulnessConfig(steps=steps, batch_size=1),
                                     low_res=(4, 4))
    for which, scores in {"map": result.explained, **result.baselines}.items():
        alone = one_pass_per_step.explained if which == "map" else one_pass_per_step.baselines[which]
        for curve in ("deletion", "insertion", "road_morf", "road_lerf"):
            if getattr(scores, curve) is not None:
                np.testing.assert_allclose(getattr(alone, curve).scores, getattr(scores, curve).scores, atol=1e-6)


def test_a_faithful_map_beats_both_baselines_and_the_verdict_says_so():
    from engine.inspect.cam import compute_cam
    from engine.inspect.faithfulness import FaithfulnessConfig, faithfulness

    model, image = _detector(), _square_image()
    cam = compute_cam(model, image, class_index=0)
    result = faithfulness(model, image, cam.heatmap, 0, FaithfulnessConfig(steps=10), low_res=cam.raw.shape)
    mine, rand, blob = result.explained, result.baselines["random"], result.baselines["blob"]
    assert mine.deletion.auc < rand.deletion.auc and mine.deletion.auc < blob.deletion.auc
    assert mine.insertion.auc > rand.insertion.auc and mine.insertion.auc > blob.insertion.auc
    assert mine.road_morf.auc < mine.road_lerf.auc  # ROAD: removing the square first hurts most
    assert mine.drop_at() > rand.drop_at() + 0.2
    assert result.verdict() == (f"removing the top 10% hottest pixels drops the score by {mine.drop_at():.0%}; "
                                f"a random map: {rand.drop_at():.0%}")
    data = result.to_dict()
    assert data["deletion_auc"] == pytest.approx(mine.deletion.auc) and "road_gap" in data
    assert set(data["baselines"]) == {"random", "blob"}


def _sparse_reference(image, removed):
    """ROAD's system written out for scipy: each removed pixel = Σ w·neighbour / Σ w, w = 1/6 direct,
    1/12 diagonal neighbours inside the image; kept pixels fixed."""
    import scipy.sparse as sparse
    from scipy.sparse.linalg import spsolve

    h, w, _ = image.shape
    index = -np.ones((h, w), int)
    index[removed] = np.arange(removed.sum())
    rows, cols, vals = [], [], []
    rhs = np.zeros((removed.sum(), 3))
    for i, (r, c) in enumerate(zip(*np.nonzero(removed))):
        total = 0.0
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if (dr or dc) and 0 <= r + dr < h and 0 <= c + dc < w:
                    weight = 1 / 12 if dr and dc else 1 / 6
                    total += weight
                    if removed[r + dr, c + dc]:
                        rows.append(i), cols.append(index[r + dr, c + dc]), vals.append(-weight)
                    else:
                        rhs[i] += weight * image[r + dr, c + dc]
        rows.append(i), cols.append(i), vals.append(total)
    solution = spsolve(sparse.csc_matrix((vals, (rows, cols))), rhs)
    out = image.astype(np.float64).copy()
    out[removed] = solution
    return out


def test_imputation_solves_the_roads_equations_and_keeps_the_kept_pixels():
    from engine.inspect import imputation

    rng = np.random.default_rng(4)
    small = rng.uniform(0, 255, (20, 16, 3)).astype("float32")
    removed = rng.random((20, 16)) < 0.6
    exact = imputation.solve_exact(small, removed)
    np.testing.assert_allclose(exact, _sparse_reference(small, removed), atol=1e-5)
    assert imputation.residual(exact, removed) < 1e-3
    np.testing.assert_allclose(imputation.impute(small, removed, None, noise=0.0), exact, atol=1e-5)
    noisy = imputation.impute(small, removed, np.random.default_rng(0))
    np.testing.assert_array_equal(noisy[~removed], small[~removed])
    assert 1.0 < np.std(noisy[removed] - exact[removed]) < 4.0  # the 2.55 noise, clipped at the ends
    # a larger image goes through the pyramid: close to the exact solution of the full system
    yy, xx = np.mgrid[:96, :90]
    smooth = np.stack([yy * 1.2, xx * 1.5, 100 + 50 * np.sin(yy / 15.0)], -1).astype("float32")
    blob = ((yy - 40) ** 2 + (xx - 50) ** 2) < 30**2
    approx = imputation.impute(smooth, blob, np.random.default_rng(0), noise=0.0)
    np.testing.assert_array_equal(approx[~blob], smooth[~blob])
    assert np.abs(approx - _sparse_reference(smooth, blob))[blob].mean() < 3.0


def _kernel_mean(values):
    """Each pixel's mean over its neighbours inside the image, 1/6 direct and 1/12 diagonal, written out."""
    h, w = values.shape[:2]
    total, weight = np.zeros_like(values, np.float64), np.zeros((h, w, 1))
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr or dc:
                kernel = 1 / 12 if dr and dc else 1 / 6
                rows, cols = slice(max(0, -dr), h - max(0, dr)), slice(max(0, -dc), w - max(0, dc))
                from_rows, from_cols = slice(max(0, dr), h + min(0, dr)), slice(max(0, dc), w + min(0, dc))
                total[rows, cols] += kernel * values[from_rows, from_cols]
                weight[rows, cols] += kernel
    return total / weight


def _pyramid_reference(image, removed):
    """The pyramid of engine.inspect.imputation written plainly: halve (area means of the kept pixels; a
    coarse pixel is kept when at least half its pixels are), solve the top exactly, then at each level
    start from the level below (bilinear) and take ten Jacobi sweeps of ROAD's equations."""
    import cv2

    h, w = removed.shape
    if max(h, w) <= 24:
        return _sparse_reference(image, removed)
    kept = (~removed).astype("float32")
    half = ((w + 1) // 2, (h + 1) // 2)
    share = cv2.resize(kept, half, interpolation=cv2.INTER_AREA)
    sums = cv2.resize(image * kept[..., None], half, interpolation=cv2.INTER_AREA)
    coarse_kept = share >= 0.5
    coarse = np.where(coarse_kept[..., None], sums / np.maximum(share, 1e-6)[..., None], 0.0).astype("float32")
    start = cv2.resize(_pyramid_reference(coarse, ~coarse_kept).astype("float32"), (w, h),
                       interpolation=cv2.INTER_LINEAR)
    out = np.where(removed[..., None], start, image).astype(np.float64)
    for _ in range(10):
        out = np.where(removed[..., None], _kernel_mean(out), image)
    return out


def test_the_fast_imputation_equals_the_pyramid_written_plainly():
    """ROAD's imputation (OpenCV filters, sparse LU at the top, in-place sweeps) gives the numbers of
    the straightforward pyramid above (float64), on an image that goes through two levels, to 1e-5 of
    the 0..255 range — float32's own resolution there — before the noise, added to the removed pixels only."""
    from engine.inspect import imputation

    rng = np.random.default_rng(8)
    yy, xx = np.mgrid[:70, :52]
    image = np.stack([yy * 3.0, xx * 4.0, 128 + 100 * np.sin(xx / 5.0)], -1).astype("float32")
    image += rng.uniform(0, 20, image.shape).astype("float32")
    for removed in (rng.random((70, 52)) < 0.7, ((yy - 30) ** 2 + (xx - 20) ** 2) < 18**2):
        fast = imputation.impute(image, removed, None, noise=0.0)
        np.testing.assert_allclose(fast, _pyramid_reference(image, removed), atol=1e-5 * 255, rtol=0)
        noisy = imputation.impute(image, removed, np.random.default_rng(0))
        np.testing.assert_array_equal(noisy[~removed], image[~removed])
        assert 1.0 < np.std(noisy[removed] - fast[removed]) < 4.0


def test_spearman_is_scipys_rank_correlation_with_ties():
    from scipy.stats import spearmanr

    from engine.inspect.sanity import spearman

    rng = np.random.default_rng(2)
    a = np.maximum(rng.normal(size=(7, 9)), 0)  # many tied zeros, as a ReLU'd map has
    b = a + rng.normal(scale=0.5, size=a.shape)
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-9)
    assert spearman(a, np.zeros_like(a)) == 0.0


def test_sanity_check_flags_a_map_that_ignores_the_top_layer_and_never_touches_the_model():
    from engine.inspect.sanity import sanity_check

    image = _square_image()
    model = _detector()
    before = [w.copy() for w in model.get_weights()]
    passed = sanity_check(model, image, 0, "gradcam", None, stages=1)
    assert passed.stages[0][0] == ("head",)
    assert not passed.flagged and abs(passed.final_correlation) < 0.5
    for now, then in zip(model.get_weights(), before):
        np.testing.assert_array_equal(now, then)
    # a head whose kernel is one value throughout: permuting it changes nothing, so the map stays
    constant = _detector(top_kernel=np.full((2, 2), 0.5, "float32"))
    stuck = sanity_check(constant, image, 0, "gradcam", None, stages=1)
    assert stuck.flagged and stuck.final_correlation == pytest.approx(1.0)
    assert "sanity check failed" in stuck.summary() and stuck.to_dict()["flagged"] is True
    cascade = sanity_check(model, image, 0, "gradcam", None, stages=2)
    assert [paths for paths, _ in cascade.stages] == [("head",), ("head", "detector")]
    # the cached twin is reset to the model's weights before each check: the same first stage again
    assert cascade.stages[0][1] == pytest.approx(passed.stages[0][1], abs=1e-9)


def test_cli_score_adds_the_numbers_to_json_and_text(tmp_path, capsys):
    from engine.cli import main
    from engine.inspect.explain import ExplainRequest, assess, explain
    from engine.inspect.faithfulness import FaithfulnessConfig
    from engine.models.loading import load_model

    path = tmp_path / "detector.keras"
    _detector().save(path)
    photo = tmp_path / "square.png"
    Image.fromarray(_square_image().astype(np.uint8)).save(photo)
    args = ["gradcam", str(path), str(photo), "--class", "0", "--score", "--steps", "10", "--out", str(tmp_path / "o.png")]
    assert main(args + ["--json"]) == 0
    data = json.loads(capsys.readouterr().out)["faithfulness"]
    loaded = load_model(path)
    pixels = np.asarray(Image.open(photo))
    trust = assess(loaded, explain(loaded, pixels, ExplainRequest(class_=0)), FaithfulnessConfig(steps=10))
    assert data["deletion_auc"] == pytest.approx(trust.faithfulness.explained.deletion.auc, abs=1e-6)
    assert data["road_morf_auc"] == pytest.approx(trust.faithfulness.explained.road_morf.auc, abs=1e-6)
    assert data["baselines"]["random"]["insertion_auc"] == pytest.approx(
        trust.faithfulness.baselines["random"].insertion.auc, abs=1e-6)
    assert data["sanity"]["stages"][0]["randomised"] == ["head"] and data["sanity"]["flagged"] is False
    assert len(data["curves"]["deletion"]["scores"]) == 11
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "removing the top 10% hottest pixels drops the score by" in text
    assert "deletion AUC" in text and "ROAD" in text and "random map" in text and "sanity check passed" in text
    assert main(args[:-4] + ["--steps", "1", "--out", str(tmp_path / "o.png")]) == 2
