"""TensorRT backend (``tensorrt`` 10/11 or ``tensorrt_rtx``) over cuda-python memory and streams.

Written against the name-based API the two libraries share: ``set_input_shape``,
``set_tensor_address`` and ``execute_async_v3``. Each lane owns an execution context, a CUDA stream,
pinned host staging buffers and device buffers sized for the largest batch of its optimisation
profile, so lanes overlap H2D copy, compute and D2H copy with each other. All lanes share profile
0 unless the plan has more (TensorRT 10 made profile sharing across contexts the default;
TensorRT-RTX has no other mode). Every call that reports success as a bool is checked.

TensorRT-RTX compiles kernels for the GPU at run time. Contexts are created from a runtime config:
with ``eager_kernels`` (the benchmark and ``--check-against``) shape-specialised kernels are compiled
before the first inference of a shape returns, so timings never mix in fallback kernels; otherwise
they are compiled lazily in the background (the library's default). Compiled kernels go to a
runtime cache kept beside the plan (``<plan>.rtcache``), so the next process does not compile again.

Each batch records CUDA events around its copies and its execution (``last_split_ms``). With
``cuda_graph`` the execution is captured once per batch size and replayed (trtexec's
``--useCudaGraph``; TensorRT-RTX's own whole-graph capture strategy where the library has one).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from sam2ms.deps import import_tensorrt
from sam2ms.errors import Sam2msError, UsageError
from sam2ms.fileio import atomic_write
from sam2ms.preprocess import input_format_of

from .. import cuda
from .base import Backend, BackendOptions, Lane, ModelInfo, pad_batch

#: I/O types the runtime can stage through numpy (bf16/fp8 have no numpy type).
_NUMPY_IO = {"FLOAT": np.float32, "HALF": np.float16, "UINT8": np.uint8, "INT8": np.int8, "INT32": np.int32}


def runtime_cache_path(plan: str | Path) -> Path:
    """``engine.plan`` -> ``engine.plan.rtcache`` (TensorRT-RTX's compiled kernels for this GPU)."""
    plan = Path(plan)
    return plan.with_name(plan.name + ".rtcache")


def io_dtype(engine: Any, name: str) -> np.dtype:
    """The numpy dtype of an I/O tensor, or a UsageError for types numpy cannot stage."""
    kind = str(engine.get_tensor_dtype(name)).rsplit(".", 1)[-1]
    if kind not in _NUMPY_IO:
        raise UsageError(
            f"the plan's tensor {name!r} is {kind}; sam2ms stages I/O through numpy and supports "
            f"{', '.join(_NUMPY_IO)} — re-export (the ONNX's I/O is uint8/float32)"
        )
    return np.dtype(_NUMPY_IO[kind])


def _ok(result: bool, what: str) -> None:
    if not result:
        raise Sam2msError(f"TensorRT refused {what} (see the TensorRT messages above)")


class _TrtLane:
    """One execution context on its own stream with its own buffers."""

    def __init__(self, backend: TensorRTBackend, profile: int) -> None:
        engine, info = backend.engine, backend.info
        self.info, self.input, self.output = info, backend.input_name, backend.output_name
        self.cuda_graph = backend.cuda_graph and not backend.native_graphs
        self.last_split_ms: dict[str, float] | None = None
        self.stream = cuda.Stream()
        config = backend.runtime_config
        self.context = (
            engine.create_execution_context(config) if config is not None else engine.create_execution_context()
        )
        if self.context is None:
            raise Sam2msError("TensorRT could not create an execution context (out of GPU memory?)")
        _ok(self.context.set_optimization_profile_async(profile, self.stream.ptr), f"optimisation profile {profile}")
        largest = tuple(engine.get_tensor_profile_shape(self.input, profile)[2])
        self.h_in = cuda.PinnedBuffer(largest, io_dtype(engine, self.input))
        _ok(self.context.set_input_shape(self.input, largest), f"input shape {largest}")
        out_shape = tuple(self.context.get_tensor_shape(self.output))
        self.h_out = cuda.PinnedBuffer(out_shape, io_dtype(engine, self.output))
        self.d_in, self.d_out = cuda.DeviceBuffer(self.h_in.nbytes), cuda.DeviceBuffer(self.h_out.nbytes)
        _ok(self.context.set_tensor_address(self.input, self.d_in.ptr), f"the address of {self.input!r}")
        _ok(self.context.set_tensor_address(self.output, self.d_out.ptr), f"the address of {self.output!r}")
        self.events = [cuda.Event() for _ in range(4)]
        self.graphs: dict[int, cuda.Graph] = {}
        self.shape: tuple[int, ...] = largest

    def _set_batch(self, m: int) -> tuple[int, ...]:
        """Set the input shape for ``m`` tiles; returns the output shape the context infers."""
        shape = (m, *self.h_in.array.shape[1:])
        if shape != self.shape:
            _ok(self.context.set_input_shape(self.input, shape), f"input shape {shape}")
            self.shape = shape
        out = tuple(self.context.get_tensor_shape(self.output))
        if int(np.prod(out)) > self.h_out.array.size:
            raise Sam2msError(f"TensorRT output shape {out} exceeds the buffer sized for {self.h_out.array.shape}")
        return out

    def _execute(self, m: int) -> None:
        if not self.cuda_graph:
            _ok(self.context.execute_async_v3(self.stream.ptr), "execute_async_v3")
            return
        graph = self.graphs.get(m)
        if graph is None:
            # One plain run first: TensorRT may allocate or compile on the first enqueue of a shape.
            _ok(self.context.execute_async_v3(self.stream.ptr), "execute_async_v3")
            self.stream.synchronize()
            graph = self.graphs[m] = cuda.Graph(
                self.stream, lambda: _ok(self.context.execute_async_v3(self.stream.ptr), "execute_async_v3 (capture)")
            )
        graph.launch(self.stream)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        batch = pad_batch(batch, self.info.min_batch)
        m = len(batch)
        out_shape = self._set_batch(m)
        self.h_in.array[:m] = batch
        in_bytes = m * self.h_in.array[0].nbytes
        out_count = int(np.prod(out_shape))
        e = self.events
        e[0].record(self.stream)
        cuda.copy_to_device(self.d_in, self.h_in, in_bytes, self.stream)
        e[1].record(self.stream)
        self._execute(m)
        e[2].record(self.stream)
        cuda.copy_to_host(self.h_out, self.d_out, out_count * self.h_out.array.itemsize, self.stream)
        e[3].record(self.stream)
        self.stream.synchronize()
        self.last_split_ms = {name: e[i].elapsed_ms(e[i + 1]) for i, name in enumerate(("h2d", "compute", "d2h"))}
        out = self.h_out.array.reshape(-1)[:out_count].reshape(out_shape)
        return out[:n].astype(np.float32, copy=True)

    def close(self) -> None:
        for graph in self.graphs.values():
            graph.close()
        resources: list[Any] = [self.h_in, self.h_out, self.d_in, self.d_out, *self.events, self.stream]
        for res in resources:
            res.close()
        self.context = None


class TensorRTBackend(Backend):
    """A deserialised plan; lanes = (context, stream, buffers, events)."""

    name = "tensorrt"

    def __init__(self, path: Path, info: ModelInfo, options: BackendOptions) -> None:
        trt, flavour = import_tensorrt(info.sidecar.get("builder") or "auto", "running a .plan")
        cuda.require_device(f"running the TensorRT plan {path}")
        self.path, self.flavour, self.cuda_graph = Path(path), flavour, options.cuda_graph
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        # A plan can carry host code (embedded plugin libraries, a lean runtime) that TensorRT loads
        # from temporary or in-memory files. Ours never do, and a plan from elsewhere must not run
        # code on this host: both are forbidden before the plan is read.
        if hasattr(self._runtime, "engine_host_code_allowed"):
            self._runtime.engine_host_code_allowed = False
        if hasattr(self._runtime, "tempfile_control_flags"):
            self._runtime.tempfile_control_flags = 0
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise UsageError(
                f"{path}: {flavour} could not load the plan (built by {info.sidecar.get('builder')} "
                f"{info.sidecar.get('builder_version')} for {info.sidecar.get('targets')}; plans that "
                "carry host code are refused); rebuild it for this GPU and TensorRT version"
            )
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == mode)
        self.output_name = next(n for n in names if self.engine.get_tensor_mode(n) != mode)
        input_format = input_format_of(str(io_dtype(self.engine, self.input_name)))
        if input_format != info.input_format:
            raise UsageError(
                f"{path}: the plan takes {input_format} input but its sidecar says {info.input_format}; re-export it"
            )
        io_dtype(self.engine, self.output_name)
        lo, _, hi = self.engine.get_tensor_profile_shape(self.input_name, 0)
        self.profiles = int(self.engine.num_optimization_profiles)
        self.info = replace(info, min_batch=int(lo[0]), max_batch=int(hi[0]), max_lanes=None)
        self.runtime_config, self._runtime_cache, self.native_graphs = self._runtime_setup(trt, options.eager_kernels)
        self._lanes: list[_TrtLane] = []
        self._device = cuda.device_name()

    def _runtime_setup(self, trt: Any, eager_kernels: bool) -> tuple[Any, Any, bool]:
        """TensorRT-RTX: a runtime config with the kernel specialisation strategy, the runtime cache
        loaded from beside the plan, and the library's own CUDA graph capture when asked for.
        """
        if not hasattr(self.engine, "create_runtime_config"):
            return None, None, False
        config = self.engine.create_runtime_config()
        strategies = getattr(trt, "DynamicShapesKernelSpecializationStrategy", None)
        if strategies is not None and eager_kernels:
            config.dynamic_shapes_kernel_specialization_strategy = strategies.EAGER
        native_graphs = False
        if self.cuda_graph and hasattr(trt, "CudaGraphStrategy") and hasattr(config, "cuda_graph_strategy"):
            config.cuda_graph_strategy = trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
            native_graphs = True
        cache = None
        if hasattr(config, "create_runtime_cache"):
            cache = config.create_runtime_cache()
            stored = runtime_cache_path(self.path)
            if stored.is_file() and not cache.deserialize(stored.read_bytes()):
                print(
                    f"sam2ms: {stored} was made for another GPU, driver or TensorRT-RTX; compiling afresh",
                    file=sys.stderr,
                )
            _ok(config.set_runtime_cache(cache), "the runtime cache")
        return config, cache, native_graphs

    @override
    def lanes(self, count: int) -> list[Lane]:
        while len(self._lanes) < count:
            self._lanes.append(_TrtLane(self, len(self._lanes) % self.profiles))
        return list(self._lanes[:count])

    @override
    def device_name(self) -> str:
        return self._device

    @override
    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "library": self.flavour,
            "cuda_graph": self.cuda_graph,
            "runtime_cache": str(runtime_cache_path(self.path)) if self._runtime_cache is not None else None,
        }

    @override
    def close(self) -> None:
        for lane in self._lanes:
            lane.close()
        self._lanes = []
        if self._runtime_cache is not None:
            self._save_runtime_cache()

    def _save_runtime_cache(self) -> None:
        """Keep what was compiled for the next process; a read-only plan folder only costs a warning."""
        blob = self._runtime_cache.serialize()
        if blob is None or not len(memoryview(blob)):
            return
        try:
            atomic_write(runtime_cache_path(self.path), lambda f: f.write(memoryview(blob)))
        except OSError as exc:
            print(f"sam2ms: could not keep the runtime cache beside {self.path} ({exc})", file=sys.stderr)
