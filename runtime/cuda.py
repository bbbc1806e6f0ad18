"""CUDA memory and streams through cuda-python (``cuda.bindings.runtime``, or ``cuda.cudart``
in older releases): device buffers, pinned host buffers, streams and async copies.

Only what the TensorRT backend needs; every call's error code is checked and turned into an
exception that names the call.
"""

from __future__ import annotations

import ctypes
from types import ModuleType
from typing import Any

import numpy as np

from sam2ms.errors import Sam2msError, UsageError

_CUDART: ModuleType | None = None


def cudart() -> ModuleType:
    """The cuda-python runtime module (imported on first use)."""
    global _CUDART
    if _CUDART is None:
        try:
            from cuda.bindings import runtime as rt
        except ImportError:
            try:
                from cuda import cudart as rt  # type: ignore[no-redef]
            except ImportError:
                raise UsageError("CUDA memory and streams need cuda-python: pip install 'sam2ms[gpu]'") from None
        _CUDART = rt
    return _CUDART


def check(result: Any, call: str) -> Any:
    """Unpack a cuda-python ``(err, *values)`` result, raising on any error."""
    rt = cudart()
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != rt.cudaError_t.cudaSuccess:
        _, name = rt.cudaGetErrorName(err)
        raise Sam2msError(f"{call} failed: {name.decode() if isinstance(name, bytes) else name}")
    return values[0] if len(values) == 1 else values


def device_count() -> int:
    """Visible CUDA devices (0 when there is no driver or no cuda-python)."""
    try:
        rt = cudart()
    except UsageError:
        return 0
    err, n = rt.cudaGetDeviceCount()
    return int(n) if err == rt.cudaError_t.cudaSuccess else 0


class Stream:
    """A non-blocking CUDA stream."""

    def __init__(self) -> None:
        rt = cudart()
        self.handle = check(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "cudaStreamCreateWithFlags")

    @property
    def ptr(self) -> int:
        return int(self.handle)

    def synchronize(self) -> None:
        check(cudart().cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def close(self) -> None:
        if self.handle is not None:
            check(cudart().cudaStreamDestroy(self.handle), "cudaStreamDestroy")
            self.handle = None


class DeviceBuffer:
    """``nbytes`` of device memory (cudaMalloc)."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.ptr = int(check(cudart().cudaMalloc(nbytes), "cudaMalloc"))

    def close(self) -> None:
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
        self.array = np.frombuffer(raw, dtype=dtype).reshape(shape)

    def close(self) -> None:
        if self.ptr:
            self.array = None  # type: ignore[assignment]
            check(cudart().cudaFreeHost(self.ptr), "cudaFreeHost")
            self.ptr = 0


def copy_to_device(dst: DeviceBuffer, src: PinnedBuffer, nbytes: int, stream: Stream) -> None:
    rt = cudart()
    check(rt.cudaMemcpyAsync(dst.ptr, src.ptr, nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.handle),
          "cudaMemcpyAsync(H2D)")


def copy_to_host(dst: PinnedBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    rt = cudart()
    check(rt.cudaMemcpyAsync(dst.ptr, src.ptr, nbytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.handle),
          "cudaMemcpyAsync(D2H)")
