"""A CPU stand-in for TensorRT and the cuda-python layer, so that the TensorRT backend's own logic
(profiles, shapes, bool results, buffer sizes, dtypes, events, CUDA graphs) runs in CI.

It follows the documented name-based API (``set_input_shape``, ``set_tensor_address``,
``execute_async_v3``, ``get_tensor_profile_shape``, ...). Device and pinned memory are numpy
arrays found by their fake pointers; the "network" is a per-pixel function of a uint8 NHWC tile
(``FakeContext.logits``), so results can be checked exactly.
"""

from __future__ import annotations

import enum
import itertools
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

_MEMORY: dict[int, np.ndarray] = {}
_POINTERS = itertools.count(0x1000, 0x1000)
WEIGHTS = np.array([0.02, -0.01, 0.005], np.float32)


def _alloc(array: np.ndarray) -> int:
    ptr = next(_POINTERS)
    _MEMORY[ptr] = array
    return ptr


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    UINT8 = 5
    BF16 = 7


class TensorIOMode(enum.Enum):
    INPUT = 1
    OUTPUT = 2


class FakeContext:
    """An execution context: checks shapes against its profile, computes on execute."""

    refuse: ClassVar[set[str]] = set()  # method names that report failure (False)

    def __init__(self, engine: FakeEngine, runtime_config: Any = None) -> None:
        self.engine, self.runtime_config = engine, runtime_config
        self.shape: tuple[int, ...] = ()  # set by set_input_shape
        self.addresses: dict[str, int] = {}
        self.profile = 0
        self.executions = 0

    def set_optimization_profile_async(self, index: int, stream: int) -> bool:
        self.profile = index
        return index < self.engine.num_optimization_profiles and "profile" not in self.refuse

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        lo, _, hi = self.engine.get_tensor_profile_shape(name, self.profile)
        if not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
            return False
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        n, h, w, _ = self.shape
        return self.shape if name == "image" else (n, 1, h, w)

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.addresses[name] = ptr
        return "address" not in self.refuse

    @staticmethod
    def logits(tiles: np.ndarray) -> np.ndarray:
        """The fake network: a fixed per-pixel function of RGB bytes."""
        return (np.tensordot(tiles.astype(np.float32), WEIGHTS, axes=(3, 0)) - 1.0)[:, None]

    def execute_async_v3(self, stream: int) -> bool:
        self.executions += 1
        n = self.shape[0]
        size = int(np.prod(np.asarray(self.shape)))
        tiles = _MEMORY[self.addresses["image"]][:size].view(np.uint8).reshape(self.shape)
        out = self.logits(tiles).astype(np.float32).reshape(-1).view(np.uint8)
        _MEMORY[self.addresses["logits"]][: out.size] = out
        return n > 0


class FakeEngine:
    def __init__(
        self, tile: int, batch: tuple[int, int, int], profiles: int = 1, output_dtype: DataType = DataType.FLOAT
    ) -> None:
        self.tile, self.batch, self.num_optimization_profiles = tile, batch, profiles
        self.output_dtype, self.num_io_tensors = output_dtype, 2
        self.contexts: list[FakeContext] = []
        self.loaded_with: dict[str, Any] = {}  # the runtime's host-code settings when it read the plan

    def get_tensor_name(self, i: int) -> str:
        return ("image", "logits")[i]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode.INPUT if name == "image" else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType.UINT8 if name == "image" else self.output_dtype

    def get_tensor_profile_shape(self, name: str, profile: int) -> list[tuple[int, ...]]:
        return [(n, self.tile, self.tile, 3) for n in self.batch]

    def create_execution_context(self, *args: Any) -> FakeContext:
        self.contexts.append(FakeContext(self, args[0] if args else None))
        return self.contexts[-1]


class RuntimeCache:
    """TensorRT-RTX's compiled-kernel cache: loads what it is given, serialises a blob."""

    def __init__(self) -> None:
        self.loaded: bytes | None = None

    def deserialize(self, blob: bytes) -> bool:
        self.loaded = bytes(blob)
        return blob.startswith(b"kernels")

    def serialize(self) -> bytes:
        return b"kernels for the fake GPU"


class RuntimeConfig:
    def __init__(self) -> None:
        self.dynamic_shapes_kernel_specialization_strategy = "LAZY"
        self.cuda_graph_strategy = "DISABLED"
        self.cache: RuntimeCache | None = None

    def create_runtime_cache(self) -> RuntimeCache:
        return RuntimeCache()

    def set_runtime_cache(self, cache: RuntimeCache) -> bool:
        self.cache = cache
        return True


class RtxEngine(FakeEngine):
    """An engine of TensorRT-RTX: contexts come from a runtime config."""

    def create_runtime_config(self) -> RuntimeConfig:
        self.config = RuntimeConfig()
        return self.config


def fake_tensorrt(engine: FakeEngine) -> SimpleNamespace:
    """A ``tensorrt`` module whose Runtime deserialises any plan into ``engine``."""

    class Logger:
        WARNING = 2

        def __init__(self, severity: int) -> None:
            pass

    class Runtime:
        def __init__(self, logger: Any) -> None:
            self.engine_host_code_allowed = True  # the worst case: a runtime that would load host code
            self.tempfile_control_flags = 3  # ALLOW_IN_MEMORY_FILES | ALLOW_TEMPORARY_FILES

        def deserialize_cuda_engine(self, blob: bytes) -> FakeEngine:
            engine.loaded_with = {
                "engine_host_code_allowed": self.engine_host_code_allowed,
                "tempfile_control_flags": self.tempfile_control_flags,
            }
            return engine

    rtx = isinstance(engine, RtxEngine)
    extra = (
        {
            "DynamicShapesKernelSpecializationStrategy": SimpleNamespace(EAGER="EAGER", LAZY="LAZY"),
            "CudaGraphStrategy": SimpleNamespace(WHOLE_GRAPH_CAPTURE="WHOLE_GRAPH_CAPTURE"),
        }
        if rtx
        else {}
    )
    return SimpleNamespace(
        __version__="1.7.fake" if rtx else "10.fake",
        Logger=Logger,
        Runtime=Runtime,
        TensorIOMode=TensorIOMode,
        DataType=DataType,
        **extra,
    )


class Stream:
    def __init__(self) -> None:
        self.handle = self.ptr = next(_POINTERS)

    def synchronize(self) -> None:
        pass

    def close(self) -> None:
        pass


class DeviceBuffer:
    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes
        self.ptr = _alloc(np.zeros(nbytes, np.uint8))

    def close(self) -> None:
        _MEMORY.pop(self.ptr, None)


class PinnedBuffer:
    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        self.array = np.zeros(shape, dtype)
        self.nbytes = self.array.nbytes
        self.ptr = _alloc(self.array)

    def close(self) -> None:
        _MEMORY.pop(self.ptr, None)


def copy_to_device(dst: DeviceBuffer, src: PinnedBuffer, nbytes: int, stream: Stream) -> None:
    _MEMORY[dst.ptr][:nbytes] = src.array.reshape(-1).view(np.uint8)[:nbytes]


def copy_to_host(dst: PinnedBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    dst.array.reshape(-1).view(np.uint8)[:nbytes] = _MEMORY[src.ptr][:nbytes]


class Event:
    def record(self, stream: Stream) -> None:
        pass

    def elapsed_ms(self, later: Event) -> float:
        return 0.25

    def close(self) -> None:
        pass


class Graph:
    """Captures by running ``enqueue`` once; each launch replays it."""

    captured = 0

    def __init__(self, stream: Stream, enqueue: Any) -> None:
        Graph.captured += 1
        self._enqueue = enqueue

    def launch(self, stream: Stream) -> None:
        self._enqueue()

    def close(self) -> None:
        pass


def install(monkeypatch: Any, engine: FakeEngine) -> None:
    """Route the TensorRT backend's library and CUDA calls to these fakes."""
    from sam2ms.runtime import cuda
    from sam2ms.runtime.backends import tensorrt_backend

    monkeypatch.setattr(
        tensorrt_backend, "import_tensorrt", lambda flavour, purpose: (fake_tensorrt(engine), "tensorrt")
    )
    for name, value in {
        "Stream": Stream,
        "DeviceBuffer": DeviceBuffer,
        "PinnedBuffer": PinnedBuffer,
        "Event": Event,
        "Graph": Graph,
        "copy_to_device": copy_to_device,
        "copy_to_host": copy_to_host,
        "require_device": lambda what: None,
        "device_name": lambda device=0: "Fake GPU",
    }.items():
        monkeypatch.setattr(cuda, name, value)
