"""Probabilities of a model file on tiles, for the accuracy checks of export and calibration.

ONNX Runtime (CPU) runs the exported graph the export's parity check and the INT8 report judge;
OpenVINO (FP32, and BF16 where the CPU has it natively) measures the gates its backend reads from
the sidecar (``--openvino``). The verdicts are :mod:`sam2ms.accuracy`'s; this module only runs
the engines, so it sits in the runtime, below export and calibration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.accuracy import gate_judge
from sam2ms.deps import require
from sam2ms.metrics import sigmoid
from sam2ms.preprocess import input_format_of, model_input


def onnxruntime_probabilities(onnx_path: str | Path, tiles: np.ndarray, batch: int = 1) -> np.ndarray:
    """ONNX Runtime CPU probabilities of uint8 RGB windows for an exported model of either input format."""
    ort = require("onnxruntime", "running an ONNX model")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    x = model_input(tiles, input_format_of(inp.type))
    out = [session.run(None, {inp.name: x[i : i + batch]})[0] for i in range(0, len(x), batch)]
    return sigmoid(np.concatenate(out))


def openvino_checks(onnx_path: str | Path, precision: str, tiles: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """OpenVINO's gates on this machine's CPU for a ``precision`` file, against FP32 ``reference``
    probabilities (N x 1 x T x T) of ``tiles``: in FP32 and, where the CPU has it natively, BF16
    (:func:`sam2ms.accuracy.gate_judge` says by which criteria), or why
    BF16 was not measured. The runtime reads them from the sidecar's ``openvino`` field.
    """
    from sam2ms.runtime.backends.openvino_backend import device_full_name, native_bf16

    ov = require("openvino", "--openvino")
    core = ov.Core()
    record: dict[str, Any] = {
        "version": ov.__version__,
        "device": device_full_name(core, "CPU"),
        "fp32": openvino_gate(onnx_path, precision, "fp32", tiles, reference),
    }
    if native_bf16(core):
        record["bf16"] = openvino_gate(onnx_path, precision, "bf16", tiles, reference)
    else:
        record["bf16"] = {
            "measured": False,
            "why": f"{record['device']} has no native BF16; the runtime measures the gate where it runs BF16",
        }
    return record


def openvino_gate(
    onnx_path: str | Path, precision: str, run_precision: str, tiles: np.ndarray, reference: np.ndarray
) -> dict[str, Any]:
    """One of :func:`openvino_checks`' gates: OpenVINO running the ``precision`` file at
    ``run_precision`` on ``tiles``, judged against ``reference``.
    """
    from sam2ms.runtime.backends.base import BackendOptions, ModelInfo
    from sam2ms.runtime.backends.openvino_backend import OpenVinoBackend

    info = ModelInfo(str(onnx_path), "onnx", 0, precision)  # the graph's own tile; no sidecar (being written)
    with OpenVinoBackend(Path(onnx_path), info, BackendOptions(precision=run_precision), gate=False) as backend:
        verdict = gate_judge(precision, reference)(run_precision, backend.probabilities(tiles))
    return verdict.noted(measured_by="export").to_json()


def openvino_failures(name: str, record: dict[str, Any]) -> list[str]:
    """One line per OpenVINO gate of :func:`openvino_checks` that failed."""
    return [
        f"{name} on OpenVINO {p}: " + "; ".join(record[p]["failures"])
        for p in ("fp32", "bf16")
        if record[p].get("passed") is False
    ]
