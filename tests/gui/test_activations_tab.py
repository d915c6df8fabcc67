"""Activations tab driven like a user: model + image → channel grid, enlarge, sparsity, nested bases."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.tabs.activations import ActivationsTab
from models import book_nested, convnet, loaded

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("tf_context")]  # these tabs need TensorFlow


@pytest.fixture
def image_path(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    pixels[10:30, 12:36] = (250, 40, 40)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels).save(path)
    return str(path)


def test_grid_has_one_tile_per_channel_and_click_enlarges(qtbot, context, image_path, open_tab):
    from app.tabs.activations import GRID_MARGIN

    tab = open_tab(ActivationsTab)
    tab.per_row.setValue(16)
    context.set_model(loaded(convnet(pool=True, flatten=True, classes=1)))
    assert tab.current_layer == "conv_a"  # the first conv layer is chosen by default
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.show_image(image_path)
    grid = tab.grid_image()
    assert grid.shape == (30, 6 * 30 + 5 * GRID_MARGIN)  # 6 channels of 30×30 in one row
    assert tab.input_view.image().shape == (40, 48, 3)

    tab.per_row.setValue(4)  # 10 channels of 13×13 → 4 columns, 3 rows
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.select_layer("conv_b")
    assert tab.grid_image().shape == (3 * 13 + 2 * GRID_MARGIN, 4 * 13 + 3 * GRID_MARGIN)

    # click inside the tile of channel 5 (row 1, column 1)
    tab.grid_view.click_pixel(13 + GRID_MARGIN + 3, 13 + GRID_MARGIN + 3)
    assert tab.current_channel == 5
    assert tab.channel_view.image().shape == (13, 13)
    assert "Channel 5" in tab.channel_title.text()

    paths, zero = tab.sparsity_series()
    assert paths == ["conv_a", "conv_b"] and all(0.0 <= z <= 1.0 for z in zero)
    assert tab.stat_channels.text() == "10"


def test_nested_base_is_a_tree_and_inner_layers_work(qtbot, context, image_path, open_tab):
    tab = open_tab(ActivationsTab)
    tab.per_row.setValue(16)
    context.set_model(loaded(book_nested()))
    top = [tab.layer_tree.topLevelItem(i).text(0) for i in range(tab.layer_tree.topLevelItemCount())]
    assert "tiny_base" in top
    base_item = tab.layer_tree.topLevelItem(top.index("tiny_base"))
    assert [base_item.child(i).text(0) for i in range(base_item.childCount())] == [
        "block1_conv", "block1_pool", "block2_conv"]
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.show_image(image_path)
    with qtbot.waitSignal(tab.done, timeout=60_000):
        context.layer_selected.emit("tiny_base/block1_pool")  # as the Model tab does
    assert tab.current_layer == "tiny_base/block1_pool"
    assert tab.grid_image().shape == (15, 4 * 15 + 3 * 2)


def test_drop_an_image_file_on_the_tab(qtbot, context, image_path, open_tab):
    tab = open_tab(ActivationsTab)
    context.set_model(loaded(convnet(pool=True, flatten=True, classes=1)))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(image_path)])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.dropEvent(event)
    assert tab.image_picker.current_path() == image_path
    assert tab.grid_image() is not None


def test_model_without_conv_layers_shows_the_engine_message_and_stays_usable(qtbot, context, image_path, open_tab,
                                                                           errors):
    import keras

    dense_only = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(name="flat"),
                                   keras.layers.Dense(3, name="dense")], name="dense_only")
    tab = open_tab(ActivationsTab)
    context.set_model(loaded(dense_only))
    assert "no convolution layers" in tab.status.text()
    tab.show_image(image_path)
    tab.select_layer("dense")
    qtbot.waitUntil(lambda: "feature map" in tab.status.text(), timeout=60_000)  # the engine's own words,
    qtbot.waitUntil(lambda: not context.runner.busy)
    assert errors == []  # in the tab beside the layer list, not in a dialog (issue 14, point 11)
    assert tab.layer_tree.isEnabled()
    # still usable: another model works
    with qtbot.waitSignal(tab.done, timeout=60_000):
        context.set_model(loaded(convnet(pool=True, flatten=True, classes=1)))
    assert tab.grid_image() is not None


def test_auto_columns_fill_the_view_and_the_user_zoom_is_kept(qtbot, context, image_path, open_tab):
    from app.tabs.activations import best_columns

    assert best_columns(32, 112, 112, 600, 600) == 6  # 6×6 is the largest square-ish fit
    assert best_columns(32, 112, 112, 1800, 230) == 16  # a wide, low view: two rows
    tab = open_tab(ActivationsTab)
    tab.show()
    qtbot.waitExposed(tab)
    assert tab.per_row.text() == "auto"
    context.set_model(loaded(convnet(pool=True, flatten=True, classes=1)))
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.show_image(image_path)
    view_w, view_h = tab.grid_view.view_size()
    grid_h, grid_w = tab.grid_image().shape[:2]
    expected = best_columns(6, 30, 30, view_w, view_h)
    assert tab.grid_image().shape[1] == expected * 30 + (expected - 1) * 2
    # the grid fills the view in one direction (fit, not a strip in the middle)
    (x0, x1), (y0, y1) = tab.grid_view.view_range()
    assert (x1 - x0) <= grid_w * 1.1 or (y1 - y0) <= grid_h * 1.1
    # names and shapes are readable: every column has a tooltip, the name column is wide enough
    item = tab.layer_tree.topLevelItem(1)
    assert item.toolTip(2) and "conv_a" in item.toolTip(0)
    assert tab.layer_tree.columnWidth(0) >= 180
    # a user zoom survives a resize; a new layer is fitted again
    tab.grid_view.zoom(2.0)
    grid = tab.grid_image()
    tab.resize(1100, 700)
    qtbot.waitUntil(lambda: not tab._relayout_timer.isActive(), timeout=5_000)
    (x0, x1), _ = tab.grid_view.view_range()
    assert not tab.grid_view.auto_fit and tab.grid_image() is grid  # neither refitted nor re-laid out
    assert (x1 - x0) < grid_w * 0.9  # still zoomed in
    with qtbot.waitSignal(tab.done, timeout=60_000):
        tab.select_layer("conv_b")
    assert tab.grid_view.auto_fit
