"""The layer graph from the public Keras config: branches, residuals, nested models, chains."""

from __future__ import annotations

from engine.inspect.graph import is_nested_model, model_dag
from models import book_nested, branchy, convnet


def _edges(nodes):
    return {(parent, node.name) for node in nodes for parent in node.inbound}


def test_branches_and_residuals_are_edges_and_branches_share_a_depth():
    nodes = model_dag(branchy())
    by_name = {node.name: node for node in nodes}
    assert {"image", "stem", "branch_1x1", "branch_3x3", "mix", "residual_add", "head"} <= set(by_name)
    edges = _edges(nodes)
    assert {("stem", "branch_1x1"), ("stem", "branch_3x3"), ("branch_1x1", "mix"), ("branch_3x3", "mix"),
            ("stem", "shortcut"), ("shortcut", "residual_add"), ("res_conv", "residual_add")} <= edges
    assert by_name["branch_1x1"].depth == by_name["branch_3x3"].depth == by_name["stem"].depth + 1
    assert by_name["branch_1x1"].column != by_name["branch_3x3"].column  # side by side, not on top
    assert by_name["mix"].depth > by_name["branch_3x3"].depth
    assert by_name["residual_add"].depth == by_name["res_conv"].depth + 1  # below its deepest input
    assert [n.name for n in nodes].index("stem") < [n.name for n in nodes].index("mix")  # topological
    assert by_name["stem"].params == 3 * 3 * 3 * 4 + 4 and by_name["stem"].output_shape == "(None, 24, 24, 4)"


def test_a_nested_base_is_one_node_that_can_be_opened():
    model = book_nested()
    nodes = model_dag(model)
    names = [n.name for n in nodes]
    assert nodes[0].class_name == "InputLayer" and names[1:] == ["tiny_base", "flatten", "out"]  # a chain
    assert _edges(nodes) == {(names[0], "tiny_base"), ("tiny_base", "flatten"), ("flatten", "out")}
    base = next(n for n in nodes if n.name == "tiny_base")
    assert base.nested and is_nested_model(model.get_layer("tiny_base"))
    inner = model_dag(model.get_layer("tiny_base"))
    assert [n.depth for n in inner] == list(range(len(inner)))  # a chain inside too
    assert not any(n.nested for n in inner)


def test_sequential_chain_depths_follow_the_layer_order():
    nodes = model_dag(convnet(pool=True))
    assert [n.depth for n in nodes] == list(range(len(nodes)))
    assert nodes[0].class_name == "InputLayer" and nodes[0].output_shape == "(None, 32, 32, 3)"
