"""PyTorch reference backend: runs a sam2ms checkpoint (only where torch is installed).

Imported only when asked for, so that the runtime itself never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam2ms.errors import UsageError

from .base import Backend, Lane, ModelInfo


class _TorchLane:
    def __init__(self, model: object, device: object) -> None:
        self._model, self._device = model, device

    def infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            logits = self._model(torch.from_numpy(batch).to(self._device))  # type: ignore[operator]
        return logits.float().cpu().numpy()


class TorchBackend(Backend):
    """FP32 eager PyTorch on CUDA when available, else CPU. One lane (PyTorch parallelises inside)."""

    name = "torch"

    def __init__(self, path: Path, tile: int | None, device: str = "auto") -> None:
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
        self._model = create_model(ckpt.model_name, checkpoint=path).eval().to(self._device)
        self.info = ModelInfo(path=str(path), kind="checkpoint", tile=size, precision="fp32", max_lanes=1,
                              sidecar={"model": ckpt.model_name})

    def lanes(self, count: int) -> list[Lane]:
        return [_TorchLane(self._model, self._device)]
