"""ONNX Runtime backend: CPU, CUDA and TensorRT execution providers where present."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from sam2ms.deps import require
from sam2ms.errors import UsageError
from sam2ms.preprocess import input_format_of, tile_of_shape

from .. import cuda
from .base import Backend, BackendOptions, Lane, ModelInfo, reconcile_graph

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


def _ort() -> Any:
    return require("onnxruntime", "running an ONNX model")


def resolve_providers(names: Sequence[str] | None) -> list[str]:
    """Map ``cpu,cuda,tensorrt`` to ONNX Runtime provider names, refusing unavailable ones."""
    names = names or ["cpu"]
    unknown = [n for n in names if n not in PROVIDERS]
    if unknown:
        raise UsageError(f"--providers {','.join(unknown)}: use cpu, cuda or tensorrt")
    available = _ort().get_available_providers()
    missing = [n for n in names if PROVIDERS[n] not in available]
    if missing:
        raise UsageError(
            f"--providers {','.join(missing)}: not available in this onnxruntime "
            f"({', '.join(available)}); pip install 'sam2ms[ort-gpu]' (without [cpu]: the two "
            "onnxruntime wheels cannot share an environment) for CUDA/TensorRT providers"
        )
    return [PROVIDERS[n] for n in names]


def library_message(exc: BaseException) -> str:
    """ONNX Runtime's own words, without its ``[ONNXRuntimeError] : 1 : FAIL :`` prefix."""
    return re.sub(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*", "", str(exc).strip())[:400] or type(exc).__name__


class _OrtLane:
    last_split_ms: dict[str, float] | None = None  # ORT does not tell

    def __init__(self, session: Any, input_name: str) -> None:
        self._session, self._input = session, input_name

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self._session.run(None, {self._input: batch})[0])


def _graph_input(session: Any) -> tuple[str, str, int | None]:
    """(input name, input format, fixed tile or None) of a session's graph."""
    inp = session.get_inputs()[0]
    fmt = input_format_of(inp.type)
    return inp.name, fmt, tile_of_shape(list(inp.shape), fmt)


def onnx_graph_tile(path: Path) -> int | None:
    """The fixed tile of an exported graph, read with ONNX Runtime (no optimisation pass, no onnx)."""
    ort = _ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return _graph_input(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))[2]


class OnnxRuntimeBackend(Backend):
    """One session; ``InferenceSession.run`` is thread-safe, so lanes share it. The tile and the
    input format come from the graph and must agree with the sidecar's (``info``).
    """

    name = "onnxruntime"

    def __init__(self, path: Path, info: ModelInfo, options: BackendOptions) -> None:
        ort = _ort()
        opts = ort.SessionOptions()
        if options.threads:
            opts.intra_op_num_threads = options.threads
        self.providers = resolve_providers(options.providers)
        try:
            self._session = ort.InferenceSession(str(path), opts, providers=self.providers)
        except Exception as exc:  # noqa: BLE001 - ORT's own exception types (Fail, InvalidProtobuf, ...)
            raise UsageError(
                f"{path}: ONNX Runtime cannot load it ({library_message(exc)}); pass an ONNX written by "
                "sam2ms-export, with its external data beside it"
            ) from None
        self._input, input_format, graph_tile = _graph_input(self._session)
        self.info = reconcile_graph(path, info, input_format, graph_tile, self._session.get_outputs()[0].name)

    @override
    def lanes(self, count: int) -> list[Lane]:
        return [_OrtLane(self._session, self._input) for _ in range(count)]

    @override
    def device_name(self) -> str:
        if self.providers[0] != PROVIDERS["cpu"] and cuda.device_status()[0]:
            return cuda.device_name()
        return super().device_name()

    @override
    def describe(self) -> dict[str, object]:
        return {**super().describe(), "providers": self.providers}
