"""The small runner interface every backend implements (Polygraphy-style).

A backend loads one model and hands out *lanes*: independent executors that may run
concurrently, one per worker thread. For TensorRT a lane is an execution context with its own
CUDA stream and buffers; for ONNX Runtime, lanes share one thread-safe session; for PyTorch on
CUDA, each lane has its own CUDA stream and pinned buffers (one lane on the CPU).
"""

from __future__ import annotations

import platform
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import numpy as np

from sam2ms.accuracy import Verdict
from sam2ms.errors import UsageError
from sam2ms.preprocess import MAX_TILE, PROBABILITY_OUTPUT


class Lane(Protocol):
    """Runs one batch in the model's input format (``ModelInfo.input_format``: uint8 N x T x T x 3 or
    normalised float32 N x 3 x T x T) -> float32 N x 1 x T x T logits.

    ``last_split_ms`` is the device-side H2D / compute / D2H time of the last batch, measured with
    CUDA events, where the lane runs on a GPU (None elsewhere).
    """

    last_split_ms: dict[str, float] | None

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Logits of one batch (N x 1 x T x T float32); safe to call from the lane's own thread only."""


@dataclass(frozen=True)
class ModelInfo:
    """What the runtime needs to know about a loaded model."""

    path: str
    kind: str  # "tensorrt-plan" | "onnx" | "checkpoint"
    tile: int
    precision: str
    input_format: str = "float32"  # see sam2ms.preprocess.INPUT_FORMATS
    min_batch: int = 1
    max_batch: int | None = None  # None: any
    max_lanes: int | None = None  # None: any
    sidecar: dict[str, Any] = field(default_factory=dict)
    unverified: bool = False  # an ONNX run without a sidecar (--unverified): nothing vouches for it

    @property
    def radiometry(self) -> dict[str, Any] | None:
        """The raster conversion the model was trained with (sam2ms.geo.radiometry), when recorded."""
        return self.sidecar.get("radiometry")


#: Precisions a run may ask for (``--precision``); which backend runs which is the backend's to say.
RUN_PRECISIONS = ("fp32", "fp16", "bf16")
#: ``torch.compile`` modes a checkpoint may run under.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
#: The most CPU threads one model may be given (``--threads``).
MAX_THREADS = 1024
#: The smallest tile a run may ask for (``--tile``); the largest is :data:`sam2ms.preprocess.MAX_TILE`.
MIN_TILE = 32


@dataclass(frozen=True)
class BackendOptions:
    """How to open and run one model, whichever backend runs it: one object that ``open_model``, every
    backend and a Ray actor read alike, instead of a keyword list each backend read its own way.

    The lane count (``--streams``) is not here: a run asks for its lanes (:meth:`Backend.lanes`),
    and OpenVINO sizes its streams from that. Fields a backend has no use for keep their defaults
    (``open_model`` refuses a request one cannot honour: a CUDA graph of an ONNX, BF16 on ONNX Runtime).
    """

    precision: str = "fp32"  # checkpoints: fp32 | fp16 | bf16 autocast; OpenVINO: fp32 | bf16
    threads: int | None = None  # CPU threads: ONNX Runtime intra-op, OpenVINO, PyTorch on a CPU
    providers: tuple[str, ...] | None = None  # ONNX Runtime: cpu, cuda, tensorrt (None: cpu)
    device: str = "CPU"  # OpenVINO's device: CPU | GPU | NPU
    cache_dir: Path | None = None  # compiled models (OpenVINO); None: $SAM2MS_OPENVINO_CACHE or sam2ms's cache
    tile: int | None = None  # must match the artifact's (None: the sidecar's, or the graph's)
    eager_kernels: bool = False  # TensorRT: no kernel autotuning at run time (timed or compared runs)
    cuda_graph: bool = False  # TensorRT plans and checkpoints on CUDA: replay captured CUDA graphs
    compile: str | None = None  # checkpoints: a torch.compile mode (COMPILE_MODES)
    channels_last: bool = False  # checkpoints: NHWC memory format
    allow_failed: bool = False  # open an artifact whose checks failed (the benchmark, which reports it)
    unverified: bool = False  # an ONNX without a sidecar, run with what its graph says
    triton_url: str | None = None  # run on a Triton server (http:// or grpc://), the artifact its reference
    triton_model: str = "sam2ms"  # the served model's name

    def validate(self) -> BackendOptions:
        """This object, once every field is in range and consistent with the others; else a
        UsageError naming the flag. Side-effect free: nothing is opened or imported.
        """
        if self.precision not in RUN_PRECISIONS:
            raise UsageError(f"--precision {self.precision}: use one of {', '.join(RUN_PRECISIONS)}")
        if self.threads is not None and not 1 <= self.threads <= MAX_THREADS:
            raise UsageError(f"--threads {self.threads}: use 1 to {MAX_THREADS}")
        if self.tile is not None and not MIN_TILE <= self.tile <= MAX_TILE:
            raise UsageError(f"--tile {self.tile}: use {MIN_TILE} to {MAX_TILE} pixels")
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise UsageError(f"torch.compile mode {self.compile}: use one of {', '.join(COMPILE_MODES)}")
        if self.cuda_graph and self.compile is not None:
            raise UsageError(
                "--cuda-graph captures the eager model; torch.compile's reduce-overhead mode is its "
                "compiled counterpart: use one or the other"
            )
        return self


BackendT = TypeVar("BackendT", bound="Backend")


class Backend(ABC):
    """A loaded model; use it as a context manager (or call ``close()``) to free it."""

    name: str
    info: ModelInfo
    #: A gate the backend measured or read for computing otherwise than the checked graph
    #: (OpenVINO's BF16 and INT8): ``passed`` False means its masks are not to be trusted.
    accuracy_gate: Verdict | None = None

    @abstractmethod
    def lanes(self, count: int) -> list[Lane]:
        """``count`` executors that may run concurrently from different threads. Calling it again
        returns lanes already made (never more device buffers than the largest count asked for).
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release device memory, streams and sessions."""

    def device_name(self) -> str:
        """The device the model runs on, named by the library that runs it."""
        return cpu_name()

    def device_peak_mb(self) -> float | None:
        """Peak device memory since the last call, where the backend can tell (then reset)."""
        return None

    def describe(self) -> dict[str, Any]:
        """What ran, for the run summary: backend, model, kind, tile, precision, input format, device."""
        return {
            "backend": self.name,
            "model": self.info.path,
            "kind": self.info.kind,
            "tile": self.info.tile,
            "precision": self.info.precision,
            "input_format": self.info.input_format,
            "device": self.device_name(),
            "unverified": self.info.unverified,
        }

    def __enter__(self: BackendT) -> BackendT:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def reconcile_graph(
    path: Path, info: ModelInfo, input_format: str, graph_tile: int | None, output_name: str = ""
) -> ModelInfo:
    """``info`` completed with what an ONNX graph says of itself (input format, fixed tile), or a
    UsageError where the graph, the sidecar and the request disagree, or the graph ends in a
    probability (the Deepness model, for QGIS) where the runtime reads logits.
    """
    if output_name == PROBABILITY_OUTPUT:
        raise UsageError(deepness_refusal(path))
    tile = info.tile or graph_tile
    if tile is None:
        raise UsageError(f"{path}: the graph has no fixed tile size and no sidecar; pass --tile")
    if tile > MAX_TILE:
        raise UsageError(
            f"{path}: the graph takes {tile}px tiles; sam2ms runs tiles up to {MAX_TILE}px (re-export "
            "with a smaller --tile)"
        )
    if graph_tile is not None and graph_tile != tile:
        raise UsageError(
            f"{path}: the graph takes {graph_tile}px tiles but {tile} was asked for; "
            f"use --tile {graph_tile} or re-export"
        )
    if info.sidecar and info.input_format != input_format:
        raise UsageError(
            f"{path}: the graph takes {input_format} input but its sidecar says {info.input_format}; re-export it"
        )
    return replace(info, tile=tile, input_format=input_format)


def deepness_refusal(path: Path) -> str:
    """Why the runtime does not run ``model.deepness.onnx`` (its output is already a probability)."""
    return (
        f"{path.name} is the model for QGIS' Deepness plugin (it ends in the sigmoid; the runtime "
        f"reads logits): run model.onnx beside it with sam2ms-infer, or load {path.name} in QGIS"
    )


def pad_batch(batch: np.ndarray, min_batch: int) -> np.ndarray:
    """Zero-pad a batch up to an engine's minimum batch size (results beyond ``len(batch)`` are dropped)."""
    if len(batch) >= min_batch:
        return batch
    pad = np.zeros((min_batch - len(batch), *batch.shape[1:]), batch.dtype)
    return np.concatenate([batch, pad])


def cpu_name() -> str:
    """The CPU's marketing name where /proc tells it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The instruction-set flags of ``cpuinfo`` (default: /proc/cpuinfo; empty where it does not exist)."""
    try:
        text = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def cpu_has_vnni() -> bool:
    """AVX-512 VNNI, AVX-VNNI or AMX INT8: 8-bit dot products without the int16 intermediate whose
    saturation makes oneDNN's (OpenVINO's) INT8 inaccurate with 8-bit weights on older CPUs.
    """
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & cpu_flags())


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: what PyTorch's bf16 autocast and OpenVINO's BF16 need to be fast."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
