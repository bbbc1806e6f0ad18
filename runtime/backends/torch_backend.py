"""PyTorch reference backend: runs a sam2ms checkpoint (only where torch is installed).

Imported only when asked for, so that the runtime itself never imports torch. It takes uint8 RGB
windows (the ``uint8`` input format) and normalises them on the device with the exported graph's
own :class:`sam2ms.models.byte_input.ByteInput`, so it moves as few bytes as an exported uint8
model. On CUDA each lane has its own CUDA stream and pinned host buffers, so ``--streams K`` exercises the same
overlapping copy/compute pipeline as TensorRT lanes, on any CUDA GPU.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.deps import require
from sam2ms.errors import UsageError

from .base import Backend, Lane, ModelInfo

AUTOCAST = {"fp16": "float16", "bf16": "bfloat16"}


class _TorchLane:
    """One forward per batch, on the lane's own CUDA stream where there is one. On CUDA it also
    times host->device, compute and device->host with CUDA events (``last_split_ms``)."""

    def __init__(self, backend: TorchBackend) -> None:
        import torch

        self._backend = backend
        self._cuda = backend.torch_device.type == "cuda"
        self._stream = torch.cuda.Stream(backend.torch_device) if self._cuda else None
        self._events = [torch.cuda.Event(enable_timing=True) for _ in range(4)] if self._cuda else []
        self._pinned: dict[tuple[int, ...], Any] = {}  # host staging per batch shape (pinned memory)
        self.last_split_ms: dict[str, float] | None = None

    def _staged(self, batch: np.ndarray) -> Any:
        import torch

        host = torch.from_numpy(np.ascontiguousarray(batch))
        if not self._cuda:
            return host
        pinned = self._pinned.get(batch.shape)
        if pinned is None:
            pinned = self._pinned[batch.shape] = torch.empty(batch.shape, dtype=host.dtype, pin_memory=True)
        pinned.copy_(host)
        return pinned

    def infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        b = self._backend
        cast = (torch.autocast(b.torch_device.type, dtype=getattr(torch, AUTOCAST[b.precision]))
                if b.precision in AUTOCAST else contextlib.nullcontext())
        stream = torch.cuda.stream(self._stream) if self._cuda else contextlib.nullcontext()
        e = self._events
        with torch.no_grad(), stream:
            host = self._staged(batch)
            if self._cuda:
                e[0].record()
            x = host.to(b.torch_device, non_blocking=True)
            if self._cuda:
                e[1].record()
            # contiguous NCHW, like the normalised tensors the model was exported and checked with
            x = b.normalize(x).contiguous()
            with cast:
                logits = b.model(x)
            if self._cuda:
                e[2].record()
            out = logits.float().to("cpu", non_blocking=self._cuda)
            if self._cuda:
                e[3].record()
                e[3].synchronize()
                self.last_split_ms = {name: e[i].elapsed_time(e[i + 1])
                                      for i, name in enumerate(("h2d", "compute", "d2h"))}
        return out.numpy()


class TorchBackend(Backend):
    """Eager PyTorch on CUDA when available, else CPU: FP32, or autocast FP16/BF16, optionally
    ``torch.compile``d (the benchmark's reference rows). On the CPU one lane (PyTorch parallelises
    inside); on CUDA any number, each on its own stream."""

    name = "torch"

    def __init__(self, path: Path, tile: int | None, device: str = "auto", precision: str = "fp32",
                 compile: bool = False) -> None:
        torch = require("torch", "the PyTorch backend (or run the exported .onnx/.plan instead)")
        from sam2ms.models import create_model
        from sam2ms.models.byte_input import ByteInput
        from sam2ms.models.checkpoint import read_checkpoint

        if precision not in ("fp32", *AUTOCAST):
            raise UsageError(f"torch precision {precision}: use fp32, {', '.join(AUTOCAST)}")
        ckpt = read_checkpoint(path)
        size = tile or int(ckpt.raw.get("image_size", 1024))  # the authors' weights carry none: 1024
        use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
        self.torch_device = torch.device("cuda" if use_cuda else "cpu")
        wrapped = ByteInput(create_model(ckpt.model_name, checkpoint=path)).eval().to(self.torch_device)
        self.normalize = wrapped.normalize
        self.model = torch.compile(wrapped.model) if compile else wrapped.model
        self.precision = precision
        self.info = ModelInfo(path=str(path), kind="checkpoint", tile=size, precision=precision, input_format="uint8",
                              max_lanes=None if use_cuda else 1, sidecar={"model": ckpt.model_name,
                                                                          "radiometry": ckpt.raw.get("radiometry")})
        self._lanes: list[_TorchLane] = []
        self._lock = threading.Lock()

    @property
    def device(self) -> str:
        return str(self.torch_device)

    def lanes(self, count: int) -> list[Lane]:
        with self._lock:
            count = count if self.info.max_lanes is None else min(count, self.info.max_lanes)
            while len(self._lanes) < count:
                self._lanes.append(_TorchLane(self))
            return list(self._lanes[:count])

    def device_name(self) -> str:
        import torch

        return torch.cuda.get_device_name(self.torch_device) if self.torch_device.type == "cuda" \
            else super().device_name()

    def device_peak_mb(self) -> float | None:
        import torch

        if self.torch_device.type != "cuda":
            return None
        peak = torch.cuda.max_memory_allocated(self.torch_device) / 2**20
        torch.cuda.reset_peak_memory_stats(self.torch_device)
        return peak
