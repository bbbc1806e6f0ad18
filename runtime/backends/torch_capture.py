"""CUDA-graph capture of the PyTorch backend's forward pass, one graph per (lane, batch size).

Why: eager autocast SAM2MS is launch-bound on an H200 (benchmarks/RESULTS.md, "GPU check": BF16
batch 4 at about 13 % of the tensor-core peak). A forward is thousands of small kernels, each
launched from Python with the GIL held, so the GPU idles between them and the lanes of other
streams queue for the GIL. A captured graph replays the whole forward with one launch.

How (PyTorch's "CUDA Graphs" recipe): each lane keeps a device input buffer per batch size; the
first batch of a size warms the forward up on the lane's own (side) stream, then captures it with
``torch.cuda.graph`` into a memory pool shared by that lane's graphs — they never run at the
same time, since a lane runs one batch at a time on its stream — and later batches are copied
into the buffer and replayed. A smaller batch (the last of a run) replays the smallest captured
graph that holds it, zero-padded, instead of capturing (and keeping the activations of) another.
Captures are serialised across lanes; replays are not.

The CUDA calls sit behind :class:`GraphAPI`, so CPU CI runs this logic against a fake that
replays by calling the function again (tests/runtime/test_torch_capture.py); ``make gpu-check``
runs the real one (tests/test_gpu.py, and the bench's ``bf16+graph`` rows).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sam2ms.errors import UsageError

WARMUP = 3  # eager runs before a capture: cuDNN/cuBLAS choose their kernels, the allocator fills its cache


class Graph(Protocol):
    """A captured graph (``torch.cuda.CUDAGraph``, or a test's fake)."""

    def replay(self) -> None:
        """Launch the captured work again on the current stream."""


class GraphAPI(Protocol):
    """The few CUDA-graph calls capture needs (:class:`TorchCudaGraphs`, or a test's fake)."""

    def pool(self) -> Any:
        """A new memory-pool handle, for the graphs of one lane."""

    def capture(self, fn: Callable[[Any], Any], static_in: Any, pool: Any, stream: Any) -> tuple[Graph, Any]:
        """Warm ``fn`` up on ``stream``, then capture ``fn(static_in)`` into ``pool``: the graph and
        the output tensor each replay overwrites.
        """


class TorchCudaGraphs:
    """:class:`GraphAPI` on ``torch.cuda``."""

    def pool(self) -> Any:
        """``torch.cuda.graph_pool_handle()``."""
        import torch

        return torch.cuda.graph_pool_handle()

    def capture(self, fn: Callable[[Any], Any], static_in: Any, pool: Any, stream: Any) -> tuple[Graph, Any]:
        """PyTorch's recipe: :data:`WARMUP` runs on ``stream``, then ``torch.cuda.graph``."""
        import torch

        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(WARMUP):
                fn(static_in)
        stream.synchronize()
        graph = torch.cuda.CUDAGraph()
        # thread_local: the other lanes' threads keep launching (and allocating) while this one captures
        with torch.cuda.graph(graph, pool=pool, stream=stream, capture_error_mode="thread_local"):
            static_out = fn(static_in)
        return graph, static_out


def graph_api(device: Any) -> GraphAPI:
    """The CUDA-graph calls for ``device`` (a torch.device), or a UsageError off CUDA."""
    if device.type != "cuda":
        raise UsageError(
            "--cuda-graph with a checkpoint needs a CUDA GPU that PyTorch can use (it runs on the CPU "
            "here); drop --cuda-graph"
        )
    return TorchCudaGraphs()


@dataclass
class _Captured:
    static_in: Any
    graph: Graph
    static_out: Any


class CapturedForward:
    """``fn`` (a device batch -> a device batch, no host synchronisation inside) for one lane,
    replayed from graphs: one per batch size, captured the first time no captured graph holds a
    batch. ``lock`` is shared by the lanes of one model (captures one at a time).
    """

    def __init__(self, fn: Callable[[Any], Any], api: GraphAPI, device: Any, stream: Any, lock: threading.Lock) -> None:
        """Nothing is captured yet: the first :meth:`load` of each batch size captures."""
        self._fn, self._api, self._device, self._stream, self._lock = fn, api, device, stream, lock
        self._pool: Any = None
        self._graphs: dict[tuple[int, ...], _Captured] = {}  # by input shape

    @property
    def batch_sizes(self) -> list[int]:
        """The batch sizes captured so far."""
        return sorted(shape[0] for shape in self._graphs)

    def load(self, host: Any) -> tuple[_Captured, int]:
        """Copy the host batch ``host`` (N x ...) into the input of the graph that runs it (captured
        now if none holds N), asynchronously on the lane's stream; (that graph, N).
        """
        n, rest = int(host.shape[0]), tuple(host.shape[1:])
        fits = [shape for shape in self._graphs if shape[0] >= n and shape[1:] == rest]
        run = self._graphs[min(fits)] if fits else self._capture(host)
        if n < run.static_in.shape[0]:
            run.static_in[n:].zero_()  # padding: a fixed, finite input (its rows are dropped)
        run.static_in[:n].copy_(host, non_blocking=True)
        return run, n

    @staticmethod
    def replay(run: _Captured, n: int) -> Any:
        """Run the graph on what :meth:`load` put in; the first ``n`` rows of its output (a view
        that the lane's next batch overwrites: copy it out first).
        """
        run.graph.replay()
        return run.static_out[:n]

    def _capture(self, host: Any) -> _Captured:
        import torch

        with self._lock:
            if self._pool is None:
                self._pool = self._api.pool()
            static_in = torch.zeros(tuple(host.shape), dtype=host.dtype, device=self._device)
            graph, static_out = self._api.capture(self._fn, static_in, self._pool, self._stream)
            run = self._graphs[tuple(static_in.shape)] = _Captured(static_in, graph, static_out)
        return run
