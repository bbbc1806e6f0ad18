"""ONNX Runtime backend: CPU, CUDA and TensorRT execution providers where present."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam2ms.errors import UsageError

from .base import Backend, Lane, ModelInfo

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


def resolve_providers(names: list[str] | None) -> list[str]:
    """Map ``cpu,cuda,tensorrt`` to ONNX Runtime provider names, refusing unavailable ones."""
    import onnxruntime as ort

    names = names or ["cpu"]
    unknown = [n for n in names if n not in PROVIDERS]
    if unknown:
        raise UsageError(f"--providers {','.join(unknown)}: use cpu, cuda or tensorrt")
    available = ort.get_available_providers()
    missing = [n for n in names if PROVIDERS[n] not in available]
    if missing:
        raise UsageError(f"--providers {','.join(missing)}: not available in this onnxruntime "
                         f"({', '.join(available)}); pip install 'sam2ms[gpu]' for CUDA/TensorRT providers")
    return [PROVIDERS[n] for n in names]


class _OrtLane:
    def __init__(self, session: object, input_name: str) -> None:
        self._session, self._input = session, input_name

    def infer(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: batch})[0]  # type: ignore[attr-defined]


class OnnxRuntimeBackend(Backend):
    """One session; ``InferenceSession.run`` is thread-safe, so lanes share it."""

    name = "onnxruntime"

    def __init__(self, path: Path, info: ModelInfo, providers: list[str] | None, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.providers = resolve_providers(providers)
        self._session = ort.InferenceSession(str(path), opts, providers=self.providers)
        inp = self._session.get_inputs()[0]
        self._input = inp.name
        graph_tile = inp.shape[-1]
        if isinstance(graph_tile, int) and graph_tile != info.tile:
            raise UsageError(f"{path}: the graph takes {graph_tile}px tiles but {info.tile} was asked for; "
                             f"use --tile {graph_tile} or re-export")
        self.info = info

    def lanes(self, count: int) -> list[Lane]:
        return [_OrtLane(self._session, self._input) for _ in range(count)]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "providers": self.providers}


def onnx_graph_tile(path: Path) -> int | None:
    """The fixed tile of an exported graph's input, read without building a session."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    last = dims[-1].dim_value if dims else 0
    return int(last) or None
