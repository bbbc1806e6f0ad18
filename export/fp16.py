"""FP32 ONNX -> FP16 ONNX with numerically fragile operators kept in FP32.

Precision is decided in the graph ("strongly typed"), so the same file serves TensorRT 10/11,
TensorRT-RTX and ONNX Runtime. SAM-style ViTs overflow FP16 in LayerNorm statistics, and
Softmax/reductions/Erf (GELU) lose accuracy, so those run in FP32 with Casts around them; the
graph's input and output stay FP32 (``keep_io_types``), so callers never see FP16.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import onnx

from sam2ms.fileio import atomic_write

KEEP_FP32_OPS = ("LayerNormalization", "Softmax", "ReduceMean", "ReduceSum", "ReduceMax", "Pow", "Sqrt", "Erf")


def convert_fp16(src: str | Path, dst: str | Path) -> onnx.ModelProto:
    """Write the FP16 version of ``src`` to ``dst`` (atomically) and return it."""
    import onnxslim
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=True, op_block_list=list(KEEP_FP32_OPS))
    # The converter appends its Casts at the end of the node list; onnxslim sorts the graph
    # topologically (and folds redundant Cast pairs) so that the checker accepts it.
    half = onnxslim.slim(half)
    onnx.checker.check_model(half, full_check=True)
    atomic_write(dst, lambda f: f.write(half.SerializeToString()))
    return cast(onnx.ModelProto, half)


def op_input_dtypes(model: onnx.ModelProto) -> dict[str, set[str]]:
    """For each operator type, the element types of its first inputs across the graph
    (after shape inference): how tests and users verify what runs in which precision."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    out: dict[str, set[str]] = {}
    for node in inferred.graph.node:
        if node.input and node.input[0] in types:
            out.setdefault(node.op_type, set()).add(onnx.TensorProto.DataType.Name(types[node.input[0]]))
    return out
