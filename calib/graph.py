"""Graph analysis for INT8: which nodes stay in float by default, and which PyTorch module each
quantised node came from (for reports). Pure ``onnx``; no quantiser involved.
"""

from __future__ import annotations

from collections.abc import Iterable

import onnx

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")


def default_exclusions(model: onnx.ModelProto) -> list[str]:
    """Node names to keep in float: activation x activation MatMuls, and the head Conv."""
    initializers = {t.name for t in model.graph.initializer}
    constants = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    weights = initializers | constants
    excluded = [n.name for n in model.graph.node if n.op_type == "MatMul" and not any(i in weights for i in n.input)]
    producer = {o: n for n in model.graph.node for o in n.output}
    # Walk back from the output to the last Conv: the one-channel head.
    frontier, seen = [model.graph.output[0].name], set()
    while frontier:
        node = producer.get(frontier.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Conv":
            excluded.append(node.name)
            break
        frontier += list(node.input)
    return excluded


def module_names(model: onnx.ModelProto, nodes: Iterable[str]) -> dict[str, str]:
    """The PyTorch module behind each node, from its parameter names (dynamo keeps them on Conv
    weights, and on the bias Add after a MatMul whose weight became a transposed constant) —
    onnxslim drops the exporter's node metadata, so this is how a report can say which layer.
    """
    initializers = {t.name for t in model.graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    wanted, found = set(nodes), {}
    for node in model.graph.node:
        if node.name not in wanted:
            continue
        near = list(node.input) + [i for c in consumers.get(node.output[0], []) if c.op_type == "Add" for i in c.input]
        params = [i for i in near if i in initializers and "." in i]
        found[node.name] = params[0].rsplit(".", 1)[0] if params else node.name
    return found
