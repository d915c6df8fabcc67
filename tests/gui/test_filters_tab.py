"""Filters tab driven like a user: generate a range of filters live, enlarge, save, cancel."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.tabs.filters import FiltersTab
from models import convnet, loaded

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("tf_context")]  # these tabs need TensorFlow


def test_gallery_has_the_requested_filters_live_and_enlarges(qtbot, context, tmp_path, open_tab):
    from app.tabs.filters import MARGIN

    tab = open_tab(FiltersTab)
    context.set_model(loaded(convnet()))
    assert [tab.layer_combo.itemData(i) for i in range(tab.layer_combo.count())] == ["conv_a", "conv_b"]
    assert tab.select_layer("conv_b")
    tab.first_spin.setValue(2)
    tab.count_spin.setValue(5)
    tab.steps_spin.setValue(3)
    partials, progress = [], []
    with qtbot.waitSignal(tab.done, timeout=120_000):
        tab.generate_button.click()
        tab._handle.engine_event.connect(partials.append)
        tab._handle.progress.connect(lambda done, total: progress.append((done, total)))
    assert tab.last_error == ""
    assert tab.pattern_count() == 5
    assert tab.result.filter_indices == [2, 3, 4, 5, 6]
    cols = tab._columns
    rows = -(-5 // cols)
    assert 1 <= cols <= 5
    assert tab.gallery_image().shape == (rows * 32 + (rows - 1) * MARGIN, cols * 32 + (cols - 1) * MARGIN, 3)
    assert tab.gallery_view.caption_texts() == ["#2", "#3", "#4", "#5", "#6"]  # each pattern's filter index
    assert progress and progress[-1][0] == progress[-1][1]  # per-step progress reached the end
    assert tab.progress.format() == "Done"
    # the default precision is the CPU's fast one, and the status says which ran
    from engine.inspect.filters import resolve_precision

    assert tab.precision_combo.currentData() == "auto"
    assert tab.result.precision == resolve_precision("auto")
    assert tab.precision_combo.itemText(0) == f"Auto ({tab.result.precision} here)"
    assert f"({tab.result.precision})" in tab.status.text()
    # click the third pattern (filter 4)
    tab.gallery_view.click_pixel((2 % cols) * (32 + MARGIN) + 5, (2 // cols) * (32 + MARGIN) + 5)
    assert tab.current_filter == 4
    assert tab.pattern_view.image().shape == (32, 32, 3)
    assert "Filter 4" in tab.pattern_title.text()
    out = tmp_path / "gallery.png"
    tab.save_gallery(str(out))
    assert np.asarray(Image.open(out)).shape == tab.gallery_image().shape


def test_cancel_stops_and_keeps_the_tab_usable(qtbot, context, open_tab):
    tab = open_tab(FiltersTab)
    context.set_model(loaded(convnet()))
    tab.count_spin.setValue(6)
    tab.steps_spin.setValue(1000)
    with qtbot.waitSignal(tab.done, timeout=120_000):
        tab.generate()
        qtbot.waitUntil(lambda: tab.progress.maximum() > 1, timeout=60_000)  # running: step progress
        tab.cancel_button.click()
    assert "Cancelled" in tab.status.text()
    assert tab.generate_button.isEnabled() and not tab.cancel_button.isEnabled()
    tab.steps_spin.setValue(2)
    tab.count_spin.setValue(2)
    with qtbot.waitSignal(tab.done, timeout=120_000):
        tab.generate()
    assert tab.pattern_count() == 2


def test_bad_range_shows_the_engine_message(qtbot, context, open_tab, errors):
    tab = open_tab(FiltersTab)
    context.set_model(loaded(convnet()))
    tab.select_layer("conv_a")
    tab.first_spin.setMaximum(100)
    tab.first_spin.setValue(50)  # conv_a has 6 filters
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.generate()
    assert "6 filters" in tab.last_error and errors == []  # in the tab, not a dialog
    qtbot.waitUntil(lambda: tab.generate_button.isEnabled())
    assert "6 filters" in tab.status.text()


def test_gallery_fills_the_view(qtbot, context, open_tab):
    """16 square patterns in a wide view: laid out in rows that use the view's height too, not one
    thin strip; the layout follows the view when it is resized."""
    from app.widgets.image_view import best_columns

    tab = open_tab(FiltersTab)
    tab.show()
    qtbot.waitExposed(tab)
    context.set_model(loaded(convnet()))
    tab.select_layer("conv_b")
    tab.count_spin.setValue(10)
    tab.steps_spin.setValue(2)
    with qtbot.waitSignal(tab.done, timeout=120_000):
        tab.generate()
    view_w, view_h = tab.gallery_view.view_size()
    assert tab._columns == min(best_columns(10, 32, 32, view_w, view_h, 5), 10)
    tab.resize(500, 800)  # a tall view: fewer columns
    qtbot.waitUntil(lambda: tab._columns == best_columns(10, 32, 32, *tab.gallery_view.view_size(), 5),
                    timeout=5_000)
    assert len(tab.gallery_view.caption_texts()) == 10
