"""Model tab: the functional DAG with branches, nested models, and layer selection for every tab."""

from __future__ import annotations

import pytest

from models import book_nested, branchy, loaded

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("tf_context")]  # these tabs need TensorFlow


def test_dag_shows_branches_and_residuals(qtbot, context):
    from app.tabs.model_graph import ModelTab

    tab = ModelTab(context)
    qtbot.addWidget(tab)
    tab.resize(1280, 800)
    with qtbot.waitSignal(tab.done):
        context.set_model(loaded(branchy()))
    paths = set(tab.node_paths())
    assert {"image", "stem", "branch_1x1", "branch_3x3", "mix", "residual_add", "head"} <= paths
    edges = set(tab.edges())
    assert ("stem", "branch_1x1") in edges and ("stem", "branch_3x3") in edges
    assert ("branch_1x1", "mix") in edges and ("branch_3x3", "mix") in edges
    assert ("stem", "shortcut") in edges and ("shortcut", "residual_add") in edges
    # the two branches sit side by side at the same depth
    boxes = tab._boxes
    assert boxes["branch_1x1"].y() == boxes["branch_3x3"].y()
    assert boxes["branch_1x1"].x() != boxes["branch_3x3"].x()


def test_selecting_a_box_emits_layer_selected(qtbot, context):
    from app.tabs.model_graph import ModelTab

    tab = ModelTab(context)
    qtbot.addWidget(tab)
    context.set_model(loaded(branchy()))
    with qtbot.waitSignal(context.layer_selected) as blocker:
        tab._boxes["branch_3x3"].setSelected(True)
    assert blocker.args == ["branch_3x3"]
    assert "branch_3x3" in tab.details.toPlainText()


def test_nested_model_drill_down_and_select_inner_layer(qtbot, context):
    from app.tabs.model_graph import ModelTab

    tab = ModelTab(context)
    qtbot.addWidget(tab)
    context.set_model(loaded(book_nested()))
    assert "tiny_base" in tab.node_paths()
    assert tab._boxes["tiny_base"].node.nested
    tab.open_nested("tiny_base")
    assert "tiny_base/block2_conv" in tab.node_paths()
    tab.go_up()
    assert "tiny_base" in tab.node_paths()
    with qtbot.waitSignal(context.layer_selected) as blocker:
        assert tab.select_layer("tiny_base/block1_conv")
    assert blocker.args == ["tiny_base/block1_conv"]
    assert tab.selected_path() == "tiny_base/block1_conv"
    assert not tab.select_layer("tiny_base/nope")


def test_two_input_two_output_model_shows_both_inputs_and_outputs(qtbot, context):
    """Chapter 7's functional model with two image inputs and two named outputs (tests/test_multi_io.py)."""
    from test_multi_io import two_in_two_out

    from app.tabs.model_graph import ModelTab
    from engine.models.loading import LoadedModel

    tab = ModelTab(context)
    qtbot.addWidget(tab)
    model = two_in_two_out()
    tab.set_model(LoadedModel(model=model, class_names=None, kind="file", input_size=None, label="two",
                              source="two.keras"))
    names = tab.node_paths()
    assert {"photo", "sketch", "kind", "damaged"} <= set(names)
    edges = set(tab.edges())
    assert ("photo", "rescaling") in edges or any(a == "photo" for a, _ in edges)
    assert any(a == "sketch" for a, _ in edges)
    assert ("both", "kind") in edges and ("both", "damaged") in edges
