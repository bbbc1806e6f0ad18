"""CUDA memory, streams, events and graphs through cuda-python (``cuda.bindings.runtime``, or
``cuda.cudart`` in older releases).

Only what the TensorRT backend needs; every call's error code is checked and turned into an
exception that names the call and the CUDA error. Device discovery tells "no GPU" apart from a
broken setup: ``cudaErrorNoDevice`` means none is visible, while any other error (most often
``cudaErrorInsufficientDriver``: no NVIDIA driver, or one older than the CUDA runtime cuda-python
was built for) is reported by name with what it usually means.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from types import ModuleType
from typing import Any

import numpy as np

from sam2ms.deps import require
from sam2ms.errors import Sam2msError, UsageError

_CUDART: ModuleType | None = None


def cudart() -> ModuleType:
    """The cuda-python runtime module (imported on first use)."""
    global _CUDART
    if _CUDART is None:
        try:
            from cuda.bindings import runtime as rt
        except ImportError:
            rt = require("cuda.cudart", "CUDA memory and streams")  # cuda-python 11/12.x layout
        _CUDART = rt
    return _CUDART


def error_name(err: Any) -> str:
    """``cudaErrorInsufficientDriver`` for an error code."""
    _, name = cudart().cudaGetErrorName(err)
    return name.decode() if isinstance(name, bytes) else str(name)


def check(result: Any, call: str) -> Any:
    """Unpack a cuda-python ``(err, *values)`` result, raising on any error."""
    rt = cudart()
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != rt.cudaError_t.cudaSuccess:
        raise Sam2msError(f"{call} failed: {error_name(err)}")
    return values[0] if len(values) == 1 else values


def _driver_hint(name: str) -> str:
    if name == "cudaErrorInsufficientDriver":
        if ctypes.util.find_library("cuda") is None:
            return "no NVIDIA driver on this machine (libcuda cannot be found)"
        return (
            "the NVIDIA driver is older than the CUDA runtime of this cuda-python (cuda-python 13 needs "
            "an R580+ driver): update the driver, or install the CUDA 12 extra ([trt-cu12]/[rtx-cu12])"
        )
    return "see the CUDA documentation for this error"


def device_status() -> tuple[int, str | None]:
    """(visible CUDA devices, why there are none). Never raises: for tests and messages."""
    try:
        rt = cudart()
    except UsageError as exc:
        return 0, str(exc)
    err, count = rt.cudaGetDeviceCount()
    if err == rt.cudaError_t.cudaSuccess:
        return int(count), None if count else "no CUDA device visible"
    name = error_name(err)
    if err == rt.cudaError_t.cudaErrorNoDevice:
        return 0, f"no CUDA device visible ({name})"
    return 0, f"{name}: {_driver_hint(name)}"


def require_device(what: str) -> None:
    """Raise a UsageError saying why ``what`` cannot run when no CUDA device can be used."""
    count, why = device_status()
    if count == 0:
        raise UsageError(f"{what} needs an NVIDIA GPU, but CUDA says: {why}")


def device_name(device: int = 0) -> str:
    """The device's name as CUDA reports it (``NVIDIA H100 80GB HBM3``)."""
    props = check(cudart().cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    name = props.name
    return (name.decode() if isinstance(name, bytes) else str(name)).rstrip("\x00")


class Stream:
    """A non-blocking CUDA stream."""

    def __init__(self) -> None:
        rt = cudart()
        self.handle = check(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")

    @property
    def ptr(self) -> int:
        """The stream's handle as an integer (what TensorRT's ``execute_async_v3`` takes)."""
        return int(self.handle)

    def synchronize(self) -> None:
        """Wait until everything queued on the stream has run."""
        check(cudart().cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def close(self) -> None:
        """Destroy the stream (idempotent)."""
        if self.handle is not None:
            check(cudart().cudaStreamDestroy(self.handle), "cudaStreamDestroy")
            self.handle = None


class DeviceBuffer:
    """``nbytes`` of device memory (cudaMalloc)."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.ptr = int(check(cudart().cudaMalloc(nbytes), "cudaMalloc"))

    def close(self) -> None:
        """Free the device memory (idempotent)."""
        if self.ptr:
            check(cudart().cudaFree(self.ptr), "cudaFree")
            self.ptr = 0


class PinnedBuffer:
    """Page-locked host memory viewed as a numpy array (fast, truly asynchronous copies)."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype | type) -> None:
        dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(shape)) * dtype.itemsize
        self.ptr = int(check(cudart().cudaMallocHost(self.nbytes), "cudaMallocHost"))
        raw = (ctypes.c_byte * self.nbytes).from_address(self.ptr)
        self.array: np.ndarray = np.frombuffer(memoryview(raw), dtype=dtype).reshape(shape)

    def close(self) -> None:
        """Free the pinned memory, after dropping the array that views it (idempotent)."""
        if self.ptr:
            self.array = np.empty(0, self.array.dtype)  # no view may outlive the freed memory
            check(cudart().cudaFreeHost(self.ptr), "cudaFreeHost")
            self.ptr = 0


def copy_to_device(dst: DeviceBuffer, src: PinnedBuffer, nbytes: int, stream: Stream) -> None:
    """Queue a host-to-device copy of ``nbytes`` on ``stream`` (pinned, so it is asynchronous)."""
    rt = cudart()
    check(
        rt.cudaMemcpyAsync(dst.ptr, src.ptr, nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.handle),
        "cudaMemcpyAsync(H2D)",
    )


def copy_to_host(dst: PinnedBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    """Queue a device-to-host copy of ``nbytes`` on ``stream`` (pinned, so it is asynchronous)."""
    rt = cudart()
    check(
        rt.cudaMemcpyAsync(dst.ptr, src.ptr, nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.handle),
        "cudaMemcpyAsync(D2H)",
    )


class Event:
    """A CUDA event with timing, for H2D / compute / D2H splits measured on the device."""

    def __init__(self) -> None:
        self.handle = check(cudart().cudaEventCreate(), "cudaEventCreate")

    def record(self, stream: Stream) -> None:
        """Record the event on ``stream`` (a point in its queue that can be timed)."""
        check(cudart().cudaEventRecord(self.handle, stream.handle), "cudaEventRecord")

    def elapsed_ms(self, later: Event) -> float:
        """Milliseconds from this event to ``later`` (both recorded and completed)."""
        return float(check(cudart().cudaEventElapsedTime(self.handle, later.handle), "cudaEventElapsedTime"))

    def close(self) -> None:
        """Destroy the event (idempotent)."""
        if self.handle is not None:
            check(cudart().cudaEventDestroy(self.handle), "cudaEventDestroy")
            self.handle = None


class Graph:
    """A CUDA graph captured from the work ``enqueue()`` puts on ``stream`` (trtexec's
    ``--useCudaGraph``): replaying it skips the per-kernel launch cost on the host.
    """

    def __init__(self, stream: Stream, enqueue: Any) -> None:
        rt = cudart()
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        check(rt.cudaStreamBeginCapture(stream.handle, mode), "cudaStreamBeginCapture")
        try:
            enqueue()
        finally:
            graph = check(rt.cudaStreamEndCapture(stream.handle), "cudaStreamEndCapture")
        self._graph = graph
        self._exec = check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    def launch(self, stream: Stream) -> None:
        """Replay the captured work on ``stream``."""
        check(cudart().cudaGraphLaunch(self._exec, stream.handle), "cudaGraphLaunch")

    def close(self) -> None:
        """Destroy the executable graph and the graph (idempotent)."""
        if self._exec is not None:
            check(cudart().cudaGraphExecDestroy(self._exec), "cudaGraphExecDestroy")
            check(cudart().cudaGraphDestroy(self._graph), "cudaGraphDestroy")
            self._exec = self._graph = None
