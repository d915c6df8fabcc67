"""The Grad-CAM tab's faithfulness panel, driven through the real tab: curves, verdict, sanity flag."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.tabs.gradcam import GradCamTab

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("tf_context")]
SIZE = 32


def _detector(constant_head: bool = False):
    """tests/test_faithfulness.py's detector; a constant head kernel makes the map independent of the
    head's weights: the sanity check must flag it."""
    from test_faithfulness import _detector as detector

    return detector(top_kernel=np.full((2, 2), 0.5, "float32") if constant_head else None)


def _loaded(model):
    from engine.models.loading import LoadedModel

    return LoadedModel(model=model, class_names=["bright", "dark"], kind="run", input_size=SIZE, label=model.name,
                       source="/runs/detector")


@pytest.fixture
def square(tmp_path):
    pixels = np.full((SIZE, SIZE, 3), 20, np.uint8)
    pixels[4:12, 18:28] = 250
    path = tmp_path / "square.png"
    Image.fromarray(pixels).save(path)
    return str(path), pixels


def test_panel_shows_the_engines_curves_and_verdict(qtbot, context, square, open_tab):
    from engine.inspect.explain import assess

    path, _ = square
    tab = open_tab(GradCamTab)
    context.set_model(_loaded(_detector()))
    with qtbot.waitSignals([tab.done, tab.trust_done], timeout=120_000):
        tab.show_image(path, class_index=0)
    panel = tab.trust_panel
    expected = assess(tab._loaded, tab.explanation)  # the same seeded computation, run here
    mine = expected.faithfulness.explained
    assert panel.verdict.text() == expected.faithfulness.verdict()[0].upper() + expected.faithfulness.verdict()[1:] + "."
    assert panel.verdict.text().startswith(f"Removing the top 10% hottest pixels drops the score by {mine.drop_at():.0%}")
    assert mine.drop_at() > expected.faithfulness.baselines["random"].drop_at() + 0.2  # a faithful map
    items = panel.plot.getPlotItem().listDataItems()
    assert len(items) == 4  # deletion, insertion, and the random map's two
    x, y = items[0].getData()
    np.testing.assert_allclose(y, mine.deletion.scores, atol=1e-6)
    np.testing.assert_allclose(x, mine.deletion.fractions)
    assert f"deletion AUC {mine.deletion.auc:.3f}" in panel.verdict.toolTip()
    assert panel.sanity.text().startswith("sanity check passed") and panel.sanity.styleSheet() == ""


def test_panel_flags_a_map_that_survives_randomising_the_head(qtbot, context, square, open_tab):
    path, _ = square
    tab = open_tab(GradCamTab)
    context.set_model(_loaded(_detector(constant_head=True)))
    with qtbot.waitSignals([tab.done, tab.trust_done], timeout=120_000):
        tab.show_image(path, class_index=0)
    assert tab.trust_panel.sanity.text().startswith("⚠ sanity check failed")
    assert "bold" in tab.trust_panel.sanity.styleSheet()
    assert tab.trust_panel.trust.sanity.flagged


def test_target_choice_is_the_clis_target(qtbot, context, square, open_tab, tmp_path):
    from engine.cli import main
    from engine.models.loading import load_model

    path, _ = square
    model_path = tmp_path / "detector.keras"
    _detector().save(model_path)
    tab = open_tab(GradCamTab)
    context.set_model(load_model(model_path))
    tab.target_combo.setCurrentIndex(tab.target_combo.findData("probability"))
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.show_image(path, class_index=1)
    assert tab.result.target == "probability"
    heat = tmp_path / "p.npy"
    assert main(["gradcam", str(model_path), path, "--class", "1", "--target", "probability",
                 "--out", str(tmp_path / "p.png"), "--save-heatmap", str(heat)]) == 0
    np.testing.assert_array_equal(np.load(heat), tab.explanation.heatmap)
