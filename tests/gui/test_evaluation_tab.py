"""The Evaluation tab driven as a user would: pick a trained run, read the metrics, click a
confusion cell, open an image's Grad-CAM, predict dropped images."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture
def trained_run(tmp_path, shapes):
    from engine.train.config import TrainConfig
    from engine.train.strategies import train

    result = train(TrainConfig(data=str(shapes), strategy="scratch", epochs=1, batch_size=8, image_size=48,
                               augment=False, out=str(tmp_path / "run"), tensorboard=False))
    return result.run_dir


@pytest.fixture
def evaluated_tab(tf_context, qtbot, trained_run):
    """An Evaluation tab, shown at a usual window size, that has finished evaluating ``trained_run``."""
    from app.tabs.evaluation import EvaluationTab

    tab = EvaluationTab(tf_context)
    qtbot.addWidget(tab)
    tab.resize(1280, 760)
    tab.show()
    with qtbot.waitSignal(tab.done, timeout=120_000):
        tab.show_run(trained_run)
    return tab


def test_metrics_confusion_gallery_and_gradcam(tf_context, qtbot, trained_run, shapes, evaluated_tab):
    tab = evaluated_tab
    assert "Test accuracy" in tab.summary_label.text()
    assert tab.class_table.rowCount() == 2
    assert tab.class_table.item(0, 0).text() == "circle"
    assert tab.confusion_table.rowCount() == 2 and tab.confusion_table.columnCount() == 2
    matrix = tab.model.metrics["confusion_matrix"]
    row, column = max(((i, j) for i in range(2) for j in range(2)), key=lambda ij: matrix[ij[0]][ij[1]])
    tab.confusion_table.cellClicked.emit(row, column)
    assert len(tab.gallery_paths()) == matrix[row][column] > 0
    expected_true = tab.model.classes[row]
    assert all(f"/{expected_true}/" in p.replace("\\", "/") for p in tab.gallery_paths())
    # one click from an image to its Grad-CAM: the run's model is loaded, then the tab is asked
    requests = []
    tf_context.show_tab.connect(lambda title: requests.append(("show", title)))
    tf_context.explain_image.connect(lambda path: requests.append(("explain", path)))
    with qtbot.waitSignal(tf_context.model_changed, timeout=60_000):
        tab.cam_button.click()
    assert requests == [("show", "Grad-CAM"), ("explain", tab.gallery_paths()[0])]
    assert os.path.samefile(tf_context.current_model.source, trained_run)  # explained with this run's model
    # predictions on dropped images
    images = [str(p) for p in sorted((shapes / "square").glob("*.png"))[:3]]
    with qtbot.waitSignal(tab.predicted, timeout=60_000):
        assert tab.handle_drop(images)
    assert tab.predict_table.rowCount() == 3
    from engine.predict import predict_images

    expected = predict_images(tf_context.current_model, images, top_k=1)  # the run's model, loaded above
    assert [tab.predict_table.item(row, 1).text() for row in range(3)] == [p.top[0][1] for p in expected]
    assert [tab.predict_table.item(row, 2).text() for row in range(3)] == [f"{p.top[0][2]:.3f}" for p in expected]


def test_whole_class_and_cell_explanations_from_the_confusion_matrix(qtbot, evaluated_tab):
    tab = evaluated_tab
    matrix = tab.model.metrics["confusion_matrix"]
    row, column = max(((i, j) for i in range(2) for j in range(2)), key=lambda ij: matrix[ij[0]][ij[1]])
    tab.confusion_table.cellClicked.emit(row, column)
    tab.explain_cell_button.click()
    window = tab.class_window
    with qtbot.waitSignal(window.done, timeout=120_000):
        pass
    assert window.last_error == ""
    result = window.result
    assert len(result.items) == matrix[row][column] == window.gallery.count()
    assert result.test_class == tab.model.classes[row] and result.explained_class == tab.model.classes[column]
    gaps = [item.faithfulness for item in result.items]
    assert gaps == sorted(gaps)  # weakest explanation first, as listed
    assert window.gallery.item(0).text().startswith(f"{gaps[0]:+.2f}")
    assert window.mean_view.image().shape == result.mean_image.shape
    window.close()
    tab.explain_class_button.click()
    with qtbot.waitSignal(tab.class_window.done, timeout=120_000):
        pass
    assert len(tab.class_window.result.items) == sum(matrix[row])  # every test image of the true class
    tab.class_window.close()
