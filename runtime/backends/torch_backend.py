"""PyTorch reference backend: runs a sam2ms checkpoint (only where torch is installed).

Imported only when asked for, so that the runtime itself never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam2ms.errors import UsageError

from .base import Backend, Lane, ModelInfo

AUTOCAST = {"fp16": "float16", "bf16": "bfloat16"}


class _TorchLane:
    """One forward per batch; on CUDA it also times host->device, compute and device->host with
    CUDA events (``last_split_ms``), which the benchmark reports as the H2D/compute/D2H split."""

    def __init__(self, model: object, device: object, precision: str) -> None:
        self._model, self._device, self._precision = model, device, precision
        self.last_split_ms: dict[str, float] | None = None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        import contextlib

        import torch

        cuda = self._device.type == "cuda"  # type: ignore[attr-defined]
        events = [torch.cuda.Event(enable_timing=True) for _ in range(4)] if cuda else []
        device_type = self._device.type  # type: ignore[attr-defined]
        cast = (torch.autocast(device_type, dtype=getattr(torch, AUTOCAST[self._precision]))
                if self._precision in AUTOCAST else contextlib.nullcontext())
        with torch.no_grad():
            if cuda:
                events[0].record()
            x = torch.from_numpy(batch).to(self._device, non_blocking=True)
            if cuda:
                events[1].record()
            with cast:
                logits = self._model(x)  # type: ignore[operator]
            if cuda:
                events[2].record()
            out = logits.float().cpu().numpy()
        if cuda:
            events[3].record()
            events[3].synchronize()
            self.last_split_ms = {name: events[i].elapsed_time(events[i + 1])
                                  for i, name in enumerate(("h2d", "compute", "d2h"))}
        return out


class TorchBackend(Backend):
    """Eager PyTorch on CUDA when available, else CPU: FP32, or autocast FP16/BF16, optionally
    ``torch.compile``d (the benchmark's reference rows). One lane (PyTorch parallelises inside)."""

    name = "torch"

    def __init__(self, path: Path, tile: int | None, device: str = "auto", precision: str = "fp32",
                 compile: bool = False) -> None:
        try:
            import torch
        except ImportError:
            raise UsageError("the torch backend needs PyTorch: pip install sam2ms (full install), or run the "
                             "exported .onnx/.plan instead") from None
        from sam2ms.models import create_model
        from sam2ms.models.checkpoint import read_checkpoint

        ckpt = read_checkpoint(path)
        size = tile or int(ckpt.raw.get("image_size", 1024))  # the authors' weights carry none: 1024
        use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
        self._device = torch.device("cuda" if use_cuda else "cpu")
        if precision not in ("fp32", *AUTOCAST):
            raise UsageError(f"torch precision {precision}: use fp32, {', '.join(AUTOCAST)}")
        self._model = create_model(ckpt.model_name, checkpoint=path).eval().to(self._device)
        if compile:
            self._model = torch.compile(self._model)
        self._precision = precision
        self.info = ModelInfo(path=str(path), kind="checkpoint", tile=size, precision=precision, max_lanes=1,
                              sidecar={"model": ckpt.model_name})

    @property
    def device(self) -> str:
        return str(self._device)

    def lanes(self, count: int) -> list[Lane]:
        return [_TorchLane(self._model, self._device, self._precision)]
