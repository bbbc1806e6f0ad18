"""OpenVINO backend: our own ONNX files (FP32, FP16, INT8 Q/DQ) on Intel/AMD CPUs, Intel GPUs and NPUs.

On a CPU with native BF16 (AVX-512 BF16 or AMX) OpenVINO runs ``model.onnx`` in BF16 about twice
as fast as ONNX Runtime runs it in FP32 (issue 16's table), with no separate IR step: the ONNX is
read directly, and the compiled model is cached (``CACHE_DIR``) so that a second process starts
fast. Our knobs map onto OpenVINO's own:

* ``--threads`` -> ``INFERENCE_NUM_THREADS``; ``--streams K`` -> ``NUM_STREAMS`` = K, with one
  infer request per lane, each run from its lane's own thread, so K requests are in flight at
  once as with OpenVINO's asynchronous API (OpenVINO splits the threads between its streams);
* ``--precision fp32|bf16`` -> ``INFERENCE_PRECISION_HINT``. BF16 is refused where the device
  lacks it natively (OpenVINO would quietly run FP32) and, as FP16 is, where its accuracy gate
  failed (:meth:`OpenVinoBackend._bf16_gate`);
* ``--device CPU|GPU|NPU`` -> the OpenVINO device (only the CPU is tested here).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.deps import require
from sam2ms.errors import UsageError
from sam2ms.preprocess import input_format_of, tile_of_shape

from .base import Backend, Lane, ModelInfo, reconcile_graph

PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
GATE_TILES = 2  # parity tiles for a BF16 gate measured at load (the export's default count)
DEVICES = ("CPU", "GPU", "NPU")


def _ov() -> Any:
    return require("openvino", "the OpenVINO backend")


def cache_dir() -> Path | None:
    """Where compiled models are cached: ``$SAM2MS_OPENVINO_CACHE`` (empty: no cache), else
    ``$XDG_CACHE_HOME/sam2ms/openvino`` (``~/.cache/sam2ms/openvino``)."""
    configured = os.environ.get("SAM2MS_OPENVINO_CACHE")
    if configured is not None:
        return Path(configured) if configured else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sam2ms" / "openvino"


def native_bf16(core: Any, device: str = "CPU") -> bool:
    """Whether OpenVINO runs BF16 natively on ``device`` (its optimisation capabilities say so)."""
    return "BF16" in core.get_property(device, "OPTIMIZATION_CAPABILITIES")


def device_full_name(core: Any, device: str) -> str:
    return str(core.get_property(device, "FULL_DEVICE_NAME")).strip()


def bf16_gate(path: Path, sidecar: dict[str, Any], measure: Callable[[], dict[str, Any]],
              allow_failed: bool = False) -> dict[str, Any]:
    """The BF16 gate recorded in ``sidecar`` (``openvino.bf16``, written by ``sam2ms-export
    --openvino``), else ``measure()``; a failed gate is a UsageError unless ``allow_failed``."""
    recorded = (sidecar.get("openvino") or {}).get("bf16") or {}
    gate = recorded if isinstance(recorded.get("passed"), bool) else measure()
    if gate["passed"] is False and not allow_failed:
        raise UsageError(f"{path}: BF16 failed its accuracy gate ({'; '.join(gate['failures'])}, against "
                         f"{gate['reference']}); run it with --precision fp32")
    return gate


class _OvLane:
    """One infer request: a lane runs on one thread; OpenVINO releases the GIL while it infers."""

    last_split_ms: dict[str, float] | None = None  # OpenVINO's CPU plugin does not split H2D/D2H

    def __init__(self, compiled: Any) -> None:
        self._request = compiled.create_infer_request()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        self._request.infer({0: np.ascontiguousarray(batch)}, share_inputs=True)
        return np.array(self._request.get_output_tensor(0).data, dtype=np.float32, copy=True)


class OpenVinoBackend(Backend):
    """A model read from ONNX, compiled for ``device`` when lanes are first asked for (their
    count is OpenVINO's ``NUM_STREAMS``). The tile and input format come from the graph and must
    agree with the sidecar's (``info``)."""

    name = "openvino"

    def __init__(self, path: Path, info: ModelInfo, *, precision: str = "fp32", threads: int | None = None,
                 device: str = "CPU", allow_failed: bool = False, gate: bool = True) -> None:
        ov = _ov()
        if precision not in PRECISIONS:
            raise UsageError(f"--precision {precision}: OpenVINO runs fp32 or bf16 (an FP16 or INT8 model file "
                             "keeps its own precision; bf16 then covers what it leaves in float)")
        if device not in DEVICES:
            raise UsageError(f"--device {device}: use one of {', '.join(DEVICES)} (OpenVINO's device names)")
        self.core = ov.Core()
        if device not in self.core.available_devices:
            raise UsageError(f"--device {device}: OpenVINO sees no such device here "
                             f"(available: {', '.join(self.core.available_devices)})")
        if precision == "bf16" and not native_bf16(self.core, device):
            offers = ", ".join(self.core.get_property(device, "OPTIMIZATION_CAPABILITIES"))
            raise UsageError(f"--precision bf16: {device_full_name(self.core, device)} has no native BF16 (OpenVINO "
                             f"offers {offers}) and would quietly run FP32; use --precision fp32 here")
        self.path, self.device, self.precision, self.threads = path, device, precision, threads
        self.cache = cache_dir()
        model = self.core.read_model(str(path))
        port = model.input(0)
        input_format = input_format_of(str(port.get_element_type().to_dtype()))
        shape = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
        info = reconcile_graph(path, info, input_format, tile_of_shape(shape, input_format))
        # what runs: BF16 wherever the file left float (an INT8 file keeps its INT8 criteria)
        effective = "bf16" if precision == "bf16" and info.precision in ("fp32", "fp16") else info.precision
        self.info = ModelInfo(info.path, info.kind, info.tile, effective, input_format=info.input_format,
                              sidecar=info.sidecar)
        self._lock = threading.Lock()
        self._compiled: Any = None
        self._streams = 0
        self._lanes: list[_OvLane] = []
        self.compile_seconds: float | None = None
        self.gate: dict[str, Any] | None = None
        if precision == "bf16" and gate:  # gate=False: the export, measuring the gate itself
            self.gate = self._bf16_gate(allow_failed)

    def _config(self, precision: str, streams: int) -> dict[str, Any]:
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": PRECISIONS[precision], "NUM_STREAMS": streams}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        if self.cache is not None:
            self.cache.mkdir(parents=True, exist_ok=True)
            config["CACHE_DIR"] = str(self.cache)
        return config

    def _compile(self, streams: int) -> None:
        started = time.perf_counter()
        # compiled from the path (not a read model) so that OpenVINO keys its cache on the file
        self._compiled = self.core.compile_model(str(self.path), self.device, self._config(self.precision, streams))
        self.compile_seconds = time.perf_counter() - started
        self._streams, self._lanes = streams, []

    def _bf16_gate(self, allow_failed: bool) -> dict[str, Any]:
        """BF16's accuracy gate, as FP16's: the one ``sam2ms-export --openvino`` measured against
        PyTorch FP32 (in the sidecar), else measured now against OpenVINO FP32 of the same graph
        on the export's parity tiles (that graph's own parity with PyTorch FP32 was checked at
        export). A failed gate refuses BF16 (``allow_failed``: the benchmark, which reports it)."""
        return bf16_gate(self.path, self.info.sidecar, self._measure_bf16_gate, allow_failed)

    def _measure_bf16_gate(self) -> dict[str, Any]:
        from sam2ms.artifacts import judge_parity
        from sam2ms.export.parity import parity_tiles

        tiles = parity_tiles(self.info.tile, GATE_TILES)
        with OpenVinoBackend(self.path, self.info, threads=self.threads, device=self.device) as fp32:
            reference = fp32.probabilities(tiles)
        return {**judge_parity("bf16", reference, self.probabilities(tiles)), "reference": "openvino-fp32",
                "measured_by": "runtime"}

    def probabilities(self, tiles: np.ndarray) -> np.ndarray:
        """Probabilities of uint8 RGB windows (N x T x T x 3), one at a time on the first lane: the
        parity checks' way of running a model (the export's and the BF16 gate's)."""
        from sam2ms.metrics import sigmoid
        from sam2ms.preprocess import model_input

        lane = self.lanes(1)[0]
        x = model_input(tiles, self.info.input_format)
        return sigmoid(np.concatenate([lane.infer(x[i:i + 1]) for i in range(len(x))]))

    def lanes(self, count: int) -> list[Lane]:
        with self._lock:
            if self._compiled is None or count > self._streams:
                self._compile(count)
            while len(self._lanes) < count:
                self._lanes.append(_OvLane(self._compiled))
            return list(self._lanes[:count])

    def executed_precision(self) -> str | None:
        """The precision OpenVINO reports for the compiled model (None before compiling)."""
        if self._compiled is None:
            return None
        return str(self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())

    def device_name(self) -> str:
        return device_full_name(self.core, self.device)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "openvino_device": self.device, "inference_precision": self.precision,
                "bf16_gate": self.gate,
                "executed_precision": self.executed_precision(), "threads": self.threads,
                "streams": self._streams or None, "cache_dir": str(self.cache) if self.cache else None,
                "compile_seconds": round(self.compile_seconds, 3) if self.compile_seconds is not None else None}

    def close(self) -> None:
        self._lanes, self._compiled = [], None
