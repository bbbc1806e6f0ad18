"""A 'model' whose output is a known per-pixel function of its input, so that every tiled result
can be checked exactly against the function applied to the whole scene.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sam2ms.artifacts import write_sidecar
from sam2ms.preprocess import normalize

WEIGHTS = np.array([1.5, -2.0, 0.7], np.float32)


def pixelwise_onnx(path: Path, tile: int, sidecar: bool = True) -> Path:
    """A 'model' whose logits are a per-pixel function of the input: a fixed 1x1 convolution; with
    the sidecar an export would write beside it (``sidecar=False``: a bare ONNX).
    """
    w = numpy_helper.from_array(WEIGHTS.reshape(1, 3, 1, 1), "w")
    b = numpy_helper.from_array(np.array([0.1], np.float32), "b")
    node = helper.make_node("Conv", ["image", "w", "b"], ["logits"])
    graph = helper.make_graph(
        [node],
        "pixelwise",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, tile, tile])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1, tile, tile])],
        initializer=[w, b],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    if sidecar:
        write_sidecar(
            path, {"kind": "onnx", "model": "pixelwise", "tile": tile, "precision": "fp32", "input_format": "float32"}
        )
    return path


def expected_probability(image: np.ndarray) -> np.ndarray:
    x = normalize(image)
    logits = np.tensordot(WEIGHTS, x, axes=(0, 0)) + 0.1
    return 1 / (1 + np.exp(-logits))
