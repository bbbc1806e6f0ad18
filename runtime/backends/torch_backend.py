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
from typing_extensions import override

from sam2ms.deps import require

from .base import Backend, BackendOptions, Lane, ModelInfo
from .torch_capture import CapturedForward, graph_api

AUTOCAST = {"fp16": "float16", "bf16": "bfloat16"}


class _TorchLane:
    """One forward per batch, on the lane's own CUDA stream where there is one, eager or replayed
    from the lane's CUDA graphs (:mod:`.torch_capture`). On CUDA it also times host->device,
    compute and device->host with CUDA events (``last_split_ms``).
    """

    def __init__(self, backend: TorchBackend) -> None:
        import torch

        self._backend = backend
        self._cuda = backend.torch_device.type == "cuda"
        # torch.cuda's Stream and Event constructors carry no annotations
        self._stream = torch.cuda.Stream(backend.torch_device) if self._cuda else None  # type: ignore[no-untyped-call]
        self._events = (
            [torch.cuda.Event(enable_timing=True) for _ in range(4)]  # type: ignore[no-untyped-call]
            if self._cuda
            else []
        )
        self._pinned: dict[tuple[int, ...], Any] = {}  # host staging per batch shape (pinned memory)
        self._graphs = (
            CapturedForward(
                backend.forward, backend.graph_api, backend.torch_device, self._stream, backend.capture_lock
            )
            if backend.graph_api is not None
            else None
        )
        self.last_split_ms: dict[str, float] | None = None

    @property
    def captured_batches(self) -> list[int]:
        """The batch sizes this lane replays from CUDA graphs (none when eager)."""
        return self._graphs.batch_sizes if self._graphs is not None else []

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

    def _mark(self, i: int) -> None:
        if self._cuda:
            self._events[i].record()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        b = self._backend
        stream = torch.cuda.stream(self._stream) if self._cuda else contextlib.nullcontext()
        with torch.no_grad(), stream:
            host = self._staged(batch)
            self._mark(0)
            if self._graphs is not None:
                run, n = self._graphs.load(host)
                self._mark(1)
                logits = self._graphs.replay(run, n)
                self._mark(2)
                # a copy, not a view: the lane's next replay overwrites the graph's output
                out = torch.empty(logits.shape, dtype=logits.dtype, pin_memory=self._cuda)
                out.copy_(logits, non_blocking=self._cuda)
            else:
                x = host.to(b.torch_device, non_blocking=True)
                self._mark(1)
                logits = b.forward(x)
                self._mark(2)
                out = logits.to("cpu", non_blocking=self._cuda)
            self._mark(3)
            if self._cuda:
                e = self._events
                e[3].synchronize()
                self.last_split_ms = {
                    name: e[i].elapsed_time(e[i + 1]) for i, name in enumerate(("h2d", "compute", "d2h"))
                }
        return out.numpy()


def cast_weights_once(model: Any, dtype: Any) -> int:
    """Cast the weights and biases of ``model``'s convolutions and linear layers to ``dtype`` in
    place; the number of tensors cast.

    Why: autocast casts these FP32 weights to BF16/FP16 again in every forward (its cache lives
    only as long as one autocast region, and is off inside CUDA-graph capture), which is as many
    extra kernels as layers. Autocast runs exactly these ops (linear, convolutions) in the low
    precision, and casting a tensor already in it is a no-op, so the outputs stay bit-identical to
    plain autocast; norms and free parameters stay FP32, as autocast keeps them.
    """
    from torch import nn

    cast = 0
    for module in model.modules():
        if isinstance(
            module,
            (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
        ):
            for name in ("weight", "bias"):
                param = getattr(module, name, None)
                if param is not None and param.dtype != dtype:
                    param.data = param.data.to(dtype)
                    cast += 1
    return cast


class TorchBackend(Backend):
    """Eager PyTorch on CUDA when available, else CPU: FP32, or autocast FP16/BF16 (weights cast
    once), optionally ``torch.compile``d in one of its modes, replayed from CUDA graphs
    (``cuda_graph``), in channels-last memory (``channels_last``). On the CPU one lane (PyTorch
    parallelises inside); on CUDA any number, each on its own stream.
    """

    name = "torch"

    def __init__(self, path: Path, options: BackendOptions) -> None:
        torch = require("torch", "the PyTorch backend (or run the exported .onnx/.plan instead)")
        from sam2ms.models import create_model
        from sam2ms.models.byte_input import ByteInput
        from sam2ms.models.checkpoint import read_checkpoint

        precision, tile = options.precision, options.tile
        ckpt = read_checkpoint(path)
        size = tile or int(ckpt.raw.get("image_size", 1024))  # the authors' weights carry none: 1024
        use_cuda = torch.cuda.is_available()
        self.torch_device = torch.device("cuda" if use_cuda else "cpu")
        if options.threads and not use_cuda:
            torch.set_num_threads(options.threads)  # process-wide: PyTorch has no per-model pool
        self.graph_api = graph_api(self.torch_device) if options.cuda_graph else None
        self.capture_lock = threading.Lock()
        wrapped = ByteInput(create_model(ckpt.model_name, checkpoint=path)).eval().requires_grad_(False)
        self._memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
        wrapped = wrapped.to(self.torch_device).to(memory_format=self._memory_format)
        self.precision = precision
        self._autocast_dtype = getattr(torch, AUTOCAST[precision]) if precision in AUTOCAST else None
        if self._autocast_dtype is not None:
            cast_weights_once(wrapped.model, self._autocast_dtype)
        self.normalize = wrapped.normalize
        self.model = (
            torch.compile(wrapped.model, mode=options.compile) if options.compile is not None else wrapped.model
        )
        self.options = {
            "compile": options.compile,
            "cuda_graph": options.cuda_graph,
            "channels_last": options.channels_last,
        }
        self.info = ModelInfo(
            path=str(path),
            kind="checkpoint",
            tile=size,
            precision=precision,
            input_format="uint8",
            max_lanes=None if use_cuda else 1,
            sidecar={"model": ckpt.model_name, "radiometry": ckpt.raw.get("radiometry")},
        )
        self._lanes: list[_TorchLane] = []
        self._lock = threading.Lock()

    def forward(self, x: Any) -> Any:
        """uint8 N x T x T x 3 on the device -> float32 N x 1 x T x T logits (what a lane runs, or
        captures): normalised like the exported graph, in the memory format and precision asked.
        """
        import torch

        x = self.normalize(x).contiguous(memory_format=self._memory_format)
        if self._autocast_dtype is None:
            return self.model(x)
        # no weight cache: the weights are cast once, and the cache must be off inside a capture
        with torch.autocast(self.torch_device.type, dtype=self._autocast_dtype, cache_enabled=False):
            return self.model(x).float()

    @override
    def describe(self) -> dict[str, Any]:
        captured = sorted({b for lane in self._lanes for b in lane.captured_batches})
        return {**super().describe(), **self.options, **({"captured_batches": captured} if captured else {})}

    @property
    def device(self) -> str:
        """The torch device the model runs on (``cuda:0`` or ``cpu``)."""
        return str(self.torch_device)

    @override
    def lanes(self, count: int) -> list[Lane]:
        with self._lock:
            count = count if self.info.max_lanes is None else min(count, self.info.max_lanes)
            while len(self._lanes) < count:
                self._lanes.append(_TorchLane(self))
            return list(self._lanes[:count])

    @override
    def device_name(self) -> str:
        import torch

        return (
            torch.cuda.get_device_name(self.torch_device) if self.torch_device.type == "cuda" else super().device_name()
        )

    @override
    def device_peak_mb(self) -> float | None:
        import torch

        if self.torch_device.type != "cuda":
            return None
        peak = torch.cuda.max_memory_allocated(self.torch_device) / 2**20
        torch.cuda.reset_peak_memory_stats(self.torch_device)
        return peak
