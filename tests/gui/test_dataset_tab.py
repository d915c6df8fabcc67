"""The Dataset tab driven as a user would: open/drop a folder, read the chart, the set-aside list,
the thumbnails, the split and the augmentation preview."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.gui


@pytest.fixture
def tab(open_tab):
    from app.tabs.dataset import DatasetTab

    widget = open_tab(DatasetTab)
    widget.show()
    return widget


@pytest.fixture
def shapes_with_bad_file(shapes):
    bad = shapes / "circle" / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    return shapes, bad


def test_scan_shows_counts_unusable_file_and_split(tab, qtbot, shapes_with_bad_file, context):
    root, bad = shapes_with_bad_file
    with qtbot.waitSignal(tab.done, timeout=30_000):
        tab.open_folder(str(root))
    assert tab.chart.counts == {"circle": 12, "square": 12}
    assert tab.unusable_table.rowCount() == 1
    assert tab.unusable_table.item(0, 0).text() == os.path.join("circle", "broken.jpg")
    assert tab.unusable_table.item(0, 1).text()  # a reason is shown
    assert bad.exists()  # set aside, never deleted
    assert "24" in tab.summary_label.text()
    assert sum(tab.model.split_sizes.values()) == 24
    assert "seed 0" in tab.split_label.text()
    assert context.settings.recent("datasets")[0] == str(root)
    assert context.dataset is not None
    # changing the seed keeps sizes (stratified) and is remembered
    tab.seed_spin.setValue(7)
    assert "seed 7" in tab.split_label.text()
    assert context.settings.value("dataset/seed", 0, int) == 7


def test_damaged_jpeg_is_listed_under_decoded_with_warnings_and_kept(tab, qtbot, shapes):
    from imagegen import damaged_jpeg_bytes

    damaged = shapes / "square" / "damaged.jpg"
    damaged.write_bytes(damaged_jpeg_bytes())
    original = damaged.read_bytes()
    with qtbot.waitSignal(tab.done, timeout=30_000):
        tab.open_folder(str(shapes))
    assert tab.damaged_box.isVisible() and tab.damaged_box.title().startswith("Decoded with warnings")
    assert tab.damaged_table.rowCount() == 1
    assert tab.damaged_table.item(0, 0).text() == os.path.join("square", "damaged.jpg")
    assert "corrupt JPEG data" in tab.damaged_table.item(0, 1).text()
    assert tab.unusable_table.rowCount() == 0  # kept, not set aside
    assert tab.chart.counts == {"circle": 12, "square": 13}
    tab.class_combo.setCurrentIndex(1)
    assert str(damaged) in tab.thumbnails.paths()
    assert damaged.read_bytes() == original
    # a clean folder hides the heading again
    damaged.unlink()
    with qtbot.waitSignal(tab.done, timeout=30_000):
        tab.rescan()
    assert not tab.damaged_box.isVisible() and tab.damaged_table.rowCount() == 0


def test_thumbnails_load_lazily_off_the_gui_thread(tab, qtbot, shapes):
    with qtbot.waitSignal(tab.done, timeout=30_000):
        tab.open_folder(str(shapes))
    assert tab.thumbnails.rowCount() == 12
    first = tab.thumbnails.paths()[0]
    qtbot.waitUntil(lambda: tab.thumbnails.cached(first), timeout=10_000)
    tab.class_combo.setCurrentIndex(1)
    assert all("square" in p for p in tab.thumbnails.paths())


def test_drop_a_folder_scans_it(window, qtbot, shapes):
    tab = window.tab("Dataset")
    with qtbot.waitSignal(tab.done, timeout=30_000):
        assert window.handle_drop([str(shapes)])
    assert tab.chart.counts == {"circle": 12, "square": 12}


def test_missing_folder_reports_a_readable_error_and_stays_usable(tab, qtbot, tmp_path, errors, shapes):
    with qtbot.waitSignal(tab.done, timeout=30_000):
        tab.open_folder(str(tmp_path / "nope"))
    assert errors and "nope" in errors[-1][1]
    assert tab.choose_button.isEnabled()
    with qtbot.waitSignal(tab.done, timeout=30_000):
        tab.open_folder(str(shapes))
    assert tab.chart.counts["square"] == 12


@pytest.mark.slow
def test_augmentation_preview_shows_a_grid_and_rerolls(tf_context, qtbot, shapes):
    from app.tabs.dataset import DatasetTab

    tab = DatasetTab(tf_context)
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.done, timeout=30_000):
        tab.open_folder(str(shapes))
    assert tab.preview.preset_combo.isEnabled()
    assert tab.preview.description.text()
    with qtbot.waitSignal(tab.preview.done, timeout=60_000):
        tab.preview.reroll_button.click()
    assert all(label.pixmap() is not None and not label.pixmap().isNull() for label in tab.preview.labels)


def test_bar_chart_legend_sits_above_the_bars_and_totals(qtbot):
    from app.widgets.plots import ClassCountChart

    chart = ClassCountChart()
    qtbot.addWidget(chart)
    chart.resize(536, 212)
    chart.show()
    qtbot.waitExposed(chart)
    per_subset = {"train": {"coat": 1000, "pullover": 1000}, "validation": {"coat": 500, "pullover": 500},
                  "test": {"coat": 500, "pullover": 500}}
    chart.set_counts(per_subset, ["coat", "pullover"])
    qtbot.waitUntil(lambda: chart._legend.isVisible())
    legend = chart._legend.mapRectToScene(chart._legend.boundingRect())
    view = chart.getPlotItem().vb
    top_of_bars = view.mapViewToScene(pg_point(0, 2000)).y()
    assert legend.bottom() < top_of_bars - 12  # clear of the bars and of the "2000" above them


def pg_point(x, y):
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_bar_chart_says_there_is_no_dataset_instead_of_drawing_empty_axes(qtbot):
    from app.widgets.plots import ClassCountChart

    chart = ClassCountChart()
    qtbot.addWidget(chart)
    plot = chart.getPlotItem()
    assert chart._empty_note is not None and "folder" in chart._empty_note.toPlainText()
    assert not plot.getAxis("left").isVisible() and not plot.getAxis("bottom").isVisible()

    chart.set_counts({"all": {"cat": 3, "dog": 5}}, ["cat", "dog"])
    assert chart._empty_note is None
    assert plot.getAxis("left").isVisible() and plot.getAxis("bottom").isVisible()
    assert chart.counts == {"cat": 3, "dog": 5}

    chart.set_counts({}, [])  # a folder with no class folders
    assert chart.counts == {} and "No classes" in chart._empty_note.toPlainText()
