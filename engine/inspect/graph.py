"""The layer graph of a Keras model from its public config: nodes, edges, depth and column.

``model.get_config()["layers"][i]["inbound_nodes"]`` names each layer's inputs, so residual
additions and Inception-style branches come out as branches; a Sequential is a chain. One level at
a time: a nested model is one node (``nested``) that a view can open. No Qt, no TensorFlow import.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GraphNode:
    name: str
    class_name: str
    inbound: list[str] = field(default_factory=list)
    output_shape: str = ""
    params: int = 0
    nested: bool = False
    depth: int = 0
    column: float = 0.0


def _history_names(obj, out: list[str]) -> None:
    """Collect the layer names of every ``keras_history`` inside an ``inbound_nodes`` entry."""
    if isinstance(obj, dict):
        config = obj.get("config")
        if obj.get("class_name") == "__keras_tensor__" and isinstance(config, dict):
            history = config.get("keras_history")
            if history:
                out.append(str(history[0]))
            return
        for value in obj.values():
            _history_names(value, out)
    elif isinstance(obj, (list, tuple)):
        # Keras 2 style: [[name, node_index, tensor_index, kwargs], ...]
        if len(obj) >= 3 and isinstance(obj[0], str) and isinstance(obj[1], int):
            out.append(obj[0])
            return
        for value in obj:
            _history_names(value, out)


def _shape_text(layer) -> str:
    try:
        output = layer.output
    except Exception:  # noqa: BLE001 - a layer with several outputs or never called
        return ""
    shapes = output if isinstance(output, (list, tuple)) else [output]
    return ", ".join(str(tuple(getattr(t, "shape", ()))).replace("None", "None") for t in shapes)


def is_nested_model(layer) -> bool:
    """A layer that is itself a model (the book's conv base inside a Sequential)."""
    return hasattr(layer, "layers") and hasattr(layer, "get_config") and hasattr(layer, "inputs")


def model_dag(model) -> list[GraphNode]:
    """The nodes of ``model`` (one level, nested models as single nodes) in topological order."""
    layers_by_name = {layer.name: layer for layer in model.layers}
    try:
        config_layers = model.get_config().get("layers", [])
    except Exception:  # noqa: BLE001 - a custom model without get_config: fall back to a chain
        config_layers = []
    nodes: list[GraphNode] = []
    is_chain = bool(config_layers) and all("inbound_nodes" not in entry for entry in config_layers)
    if config_layers and not is_chain:
        for entry in config_layers:
            name = entry.get("name") or entry.get("config", {}).get("name")
            inbound: list[str] = []
            _history_names(entry.get("inbound_nodes", []), inbound)
            nodes.append(GraphNode(name, entry.get("class_name", "?"), list(dict.fromkeys(inbound))))
    else:  # Sequential (or no config): a chain in layer order
        names = [
            entry.get("config", {}).get("name") or entry.get("name")
            for entry in config_layers
        ] or [layer.name for layer in model.layers]
        classes = [entry.get("class_name", "?") for entry in config_layers] or [
            type(layer).__name__ for layer in model.layers
        ]
        previous = None
        for name, class_name in zip(names, classes):
            nodes.append(GraphNode(name, class_name, [previous] if previous else []))
            previous = name
        if nodes and nodes[0].class_name != "InputLayer":
            nodes.insert(0, GraphNode("input", "InputLayer", []))
            nodes[1].inbound = ["input"]
    for node in nodes:
        layer = layers_by_name.get(node.name)
        if layer is not None:
            node.class_name = type(layer).__name__ if node.class_name in ("?", "") else node.class_name
            node.output_shape = _shape_text(layer)
            try:
                node.params = int(layer.count_params())
            except Exception:  # noqa: BLE001 - an unbuilt layer has no parameters yet
                node.params = 0
            node.nested = is_nested_model(layer)
        elif node.class_name == "InputLayer":
            shape = None
            for entry in config_layers:
                if (entry.get("name") or entry.get("config", {}).get("name")) == node.name:
                    shape = entry.get("config", {}).get("batch_shape")
            if shape is None:
                try:
                    shape = tuple(model.inputs[0].shape)
                except Exception:  # noqa: BLE001
                    shape = None
            node.output_shape = str(tuple(shape)) if shape is not None else ""
    _assign_depths(nodes)
    return nodes


def _assign_depths(nodes: list[GraphNode]) -> None:
    by_name = {node.name: node for node in nodes}
    for node in nodes:  # config order is topological
        parents = [by_name[name] for name in node.inbound if name in by_name]
        node.depth = 1 + max((p.depth for p in parents), default=-1)
    rows: dict[int, list[GraphNode]] = {}
    for node in nodes:
        rows.setdefault(node.depth, []).append(node)
    for depth in sorted(rows):
        row = rows[depth]
        for index, node in enumerate(row):
            parents = [by_name[name] for name in node.inbound if name in by_name]
            node.column = sum(p.column for p in parents) / len(parents) if parents else float(index)
        row.sort(key=lambda n: n.column)
        # spread the row around its barycentres, at least one column apart
        centre = sum(n.column for n in row) / len(row)
        for index, node in enumerate(row):
            node.column = centre + index - (len(row) - 1) / 2
