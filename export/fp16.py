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
