"""TensorRT backend (``tensorrt`` 10/11 or ``tensorrt_rtx``) over cuda-python memory and streams.

Written against the name-based API the two libraries share: ``set_input_shape``,
``set_tensor_address`` and ``execute_async_v3``. Each lane owns an execution context bound to its
own optimisation profile (the plan holds one per stream, see ``sam2ms-export --profiles``), a
CUDA stream, pinned host staging buffers and device buffers sized for the profile's largest
batch, so lanes overlap H2D copy, compute and D2H copy with each other.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.errors import Sam2msError, UsageError

from .. import cuda
from .base import Backend, Lane, ModelInfo, pad_batch


def _import_tensorrt(builder: str | None) -> Any:
    names = [builder] if builder in ("tensorrt", "tensorrt_rtx") else ["tensorrt", "tensorrt_rtx"]
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise UsageError("running a .plan needs TensorRT: pip install 'sam2ms[trt]' (or 'sam2ms[rtx]' for a "
                     "TensorRT-RTX plan), plus 'sam2ms[gpu]' for cuda-python")


class _TrtLane:
    def __init__(self, trt: Any, engine: Any, profile: int, info: ModelInfo, names: tuple[str, str]) -> None:
        self.info = info
        self.input, self.output = names
        self.stream = cuda.Stream()
        self.context = engine.create_execution_context()
        if self.context is None:
            raise Sam2msError("TensorRT could not create an execution context (out of GPU memory?)")
        self.context.set_optimization_profile_async(profile, self.stream.ptr)
        t, n = info.tile, info.max_batch or 1
        self.in_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self.input)))
        self.out_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(self.output)))
        self.h_in = cuda.PinnedBuffer((n, 3, t, t), self.in_dtype)
        self.h_out = cuda.PinnedBuffer((n, 1, t, t), self.out_dtype)
        self.d_in = cuda.DeviceBuffer(self.h_in.nbytes)
        self.d_out = cuda.DeviceBuffer(self.h_out.nbytes)
        self.context.set_tensor_address(self.input, self.d_in.ptr)
        self.context.set_tensor_address(self.output, self.d_out.ptr)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        batch = pad_batch(batch, self.info.min_batch)
        m = len(batch)
        self.h_in.array[:m] = batch
        if not self.context.set_input_shape(self.input, (m, 3, self.info.tile, self.info.tile)):
            raise Sam2msError(f"TensorRT refused input shape {(m, 3, self.info.tile, self.info.tile)}")
        per_in, per_out = self.h_in.nbytes // len(self.h_in.array), self.h_out.nbytes // len(self.h_out.array)
        cuda.copy_to_device(self.d_in, self.h_in, m * per_in, self.stream)
        if not self.context.execute_async_v3(self.stream.ptr):
            raise Sam2msError("TensorRT execute_async_v3 failed (see the TensorRT messages above)")
        cuda.copy_to_host(self.h_out, self.d_out, m * per_out, self.stream)
        self.stream.synchronize()
        return self.h_out.array[:n].astype(np.float32, copy=True)

    def close(self) -> None:
        for res in (self.h_in, self.h_out, self.d_in, self.d_out, self.stream):
            res.close()


class TensorRTBackend(Backend):
    """A deserialised plan; lanes = (context, profile, stream, buffers)."""

    name = "tensorrt"

    def __init__(self, path: Path, info: ModelInfo) -> None:
        trt = _import_tensorrt(info.sidecar.get("builder"))
        if cuda.device_count() == 0:
            raise UsageError(f"{path}: running a TensorRT plan needs an NVIDIA GPU and driver; none is visible "
                             "here — run the .onnx with --backend onnxruntime instead")
        self._trt = trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self._engine is None:
            raise UsageError(f"{path}: TensorRT could not load the plan (built by {info.sidecar.get('builder')} "
                             f"{info.sidecar.get('builder_version')} for {info.sidecar.get('targets')}); rebuild it "
                             "for this GPU and TensorRT version")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == mode]
        self._outputs = [n for n in names if self._engine.get_tensor_mode(n) != mode]
        lo, _, hi = self._engine.get_tensor_profile_shape(self._inputs[0], 0)
        info.min_batch, info.max_batch = int(lo[0]), int(hi[0])
        info.max_lanes = int(self._engine.num_optimization_profiles)
        self.info = info
        self._lanes: list[_TrtLane] = []

    def lanes(self, count: int) -> list[Lane]:
        if count <= len(self._lanes):  # contexts, streams and buffers are reused, never duplicated
            return list(self._lanes[:count])
        self.close()
        if count > (self.info.max_lanes or 1):
            raise UsageError(f"--streams {count}: the plan has {self.info.max_lanes} optimisation profile(s), one "
                             f"per concurrent stream; use --streams {self.info.max_lanes} or re-export with "
                             f"--profiles {count}")
        self._lanes = [_TrtLane(self._trt, self._engine, i, self.info, (self._inputs[0], self._outputs[0]))
                       for i in range(count)]
        return list(self._lanes)

    def close(self) -> None:
        for lane in self._lanes:
            lane.close()
        self._lanes = []
