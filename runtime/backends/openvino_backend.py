"""OpenVINO backend: our own ONNX files (FP32, FP16, INT8 Q/DQ) on Intel/AMD CPUs, Intel GPUs and NPUs.

On a CPU with native BF16 (AVX-512 BF16 or AMX) OpenVINO runs ``model.onnx`` in BF16 about twice
as fast as ONNX Runtime runs it in FP32 (issue 16's table), with no separate IR step: the ONNX is
read directly, and the compiled model is cached (``CACHE_DIR``) so that a second process starts
fast. Our knobs map onto OpenVINO's own:

* ``--threads`` -> ``INFERENCE_NUM_THREADS``; ``--streams K`` -> ``NUM_STREAMS`` = K, with one
  infer request per lane, each run from its lane's own thread, so K requests are in flight at
  once as with OpenVINO's asynchronous API (OpenVINO splits the threads between its streams);
* ``--precision fp32|bf16`` -> ``INFERENCE_PRECISION_HINT``. BF16 is refused where the device
  lacks it natively (OpenVINO would quietly run FP32);
* an accuracy gate (:func:`accuracy_gate`) wherever OpenVINO computes differently from the graph
  the export checked: BF16 (held to FP16's criteria) and INT8 files (OpenVINO's INT8 kernels are
  not ONNX Runtime's, which the calibration measured; held to the INT8 targets). A failed gate
  is refused, as a failed export check is;
* ``--device CPU|GPU|NPU`` -> the OpenVINO device (only the CPU is tested here).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from sam2ms.accuracy import (
    INT8_TARGETS,
    PARITY_THRESHOLDS,
    Verdict,
    gate_judge,
    gate_tiles,
    needs_gate,
    parity_tiles,
)
from sam2ms.artifacts import file_in_folder
from sam2ms.deps import require
from sam2ms.digests import cache_root, cached_sha256
from sam2ms.errors import UsageError
from sam2ms.fileio import write_json
from sam2ms.preprocess import PROBABILITY_OUTPUT, input_format_of, tile_of_shape

from .base import Backend, BackendOptions, Lane, ModelInfo, cpu_has_vnni, reconcile_graph

PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
DEVICES = ("CPU", "GPU", "NPU")


def _ov() -> Any:
    return require("openvino", "the OpenVINO backend")


def cache_dir() -> Path | None:
    """Where compiled models are cached: ``$SAM2MS_OPENVINO_CACHE`` (empty: no cache), else
    ``openvino/`` in sam2ms's cache folder (:func:`sam2ms.digests.cache_root`).
    """
    configured = os.environ.get("SAM2MS_OPENVINO_CACHE")
    if configured is not None:
        return Path(configured) if configured else None
    root = cache_root()
    return root / "openvino" if root else None


def native_bf16(core: Any, device: str = "CPU") -> bool:
    """Whether OpenVINO runs BF16 natively on ``device`` (its optimisation capabilities say so)."""
    return "BF16" in core.get_property(device, "OPTIMIZATION_CAPABILITIES")


def device_full_name(core: Any, device: str) -> str:
    """The device's marketing name as OpenVINO reports it (summaries and gate keys name it)."""
    return str(core.get_property(device, "FULL_DEVICE_NAME")).strip()


def reduce_range_hint(weight_bits: int | None) -> str:
    """Where OpenVINO's INT8 fails with 8-bit weights (``weight_bits`` as the calibration recorded
    it) on a CPU without VNNI: the likely cause and fix.
    """
    if cpu_has_vnni() or weight_bits == 7:
        return ""
    return (
        "recalibrate with --reduce-range: 7-bit weights keep OpenVINO's INT8 accurate on this CPU (no VNNI: "
        "its 8-bit products saturate)"
    )


def accuracy_gate(
    path: Path,
    sidecar: dict[str, Any],
    file_precision: str,
    run_precision: str,
    measure: Callable[[], Verdict],
    allow_failed: bool = False,
) -> Verdict | None:
    """OpenVINO's accuracy gate for ``path`` at ``run_precision``: the one recorded in the sidecar
    (``openvino.<precision>``, by ``sam2ms-export --openvino`` or ``sam2ms calibrate --openvino``),
    else ``measure()`` where :func:`needs_gate`, else None. A failed gate is a UsageError unless
    ``allow_failed`` (the benchmark, which reports it).
    """
    recorded = (sidecar.get("openvino") or {}).get(run_precision) or {}
    if isinstance(recorded.get("passed"), bool):
        gate = Verdict.from_json(recorded)
    elif needs_gate(file_precision, run_precision):
        gate = measure()
    else:
        return None
    if gate.passed is False and not allow_failed:
        what = "INT8" if file_precision == "int8" else run_precision.upper()
        if file_precision == "int8" and run_precision == "bf16":
            what += " with BF16"
        fix = "run it with --precision fp32"
        if file_precision == "int8":
            hint = reduce_range_hint((sidecar.get("calibration") or {}).get("weight_bits"))
            fix = (
                "run it with --backend onnxruntime (whose INT8 its calibration measured), or model.onnx on "
                "OpenVINO" + (f"; or {hint}" if hint else "")
            )
        raise UsageError(
            f"{path}: {what} on OpenVINO failed its accuracy gate ({'; '.join(gate.failures)}, "
            f"against {gate.figures.get('reference')}); {fix}"
        )
    return gate


def library_message(exc: BaseException) -> str:
    """OpenVINO's own words from one of its exceptions, without the C++ source locations and
    blank lines it wraps them in (the first three lines that say something, up to 400 characters).
    """
    lines = [line.strip() for line in str(exc).splitlines()]
    said = [line for line in lines if line and not line.startswith(("Exception from src", "Check '"))]
    return ("; ".join(said[:3]) or type(exc).__name__)[:400]


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
    agree with the sidecar's (``info``).
    """

    name = "openvino"

    def __init__(
        self,
        path: Path,
        info: ModelInfo,
        options: BackendOptions,
        *,
        gate: bool = True,
    ) -> None:
        ov = _ov()
        precision, device = options.precision, options.device
        if precision not in PRECISIONS:
            raise UsageError(
                f"--precision {precision}: OpenVINO runs fp32 or bf16 (an FP16 or INT8 model file "
                "keeps its own precision; bf16 then covers what it leaves in float)"
            )
        if device not in DEVICES:
            raise UsageError(f"--device {device}: use one of {', '.join(DEVICES)} (OpenVINO's device names)")
        self.core = ov.Core()
        if device not in self.core.available_devices:
            raise UsageError(
                f"--device {device}: OpenVINO sees no such device here "
                f"(available: {', '.join(self.core.available_devices)})"
            )
        if precision == "bf16" and not native_bf16(self.core, device):
            offers = ", ".join(self.core.get_property(device, "OPTIMIZATION_CAPABILITIES"))
            raise UsageError(
                f"--precision bf16: {device_full_name(self.core, device)} has no native BF16 (OpenVINO "
                f"offers {offers}) and would quietly run FP32; use --precision fp32 here"
            )
        self.path, self.device, self.precision, self.threads = path, device, precision, options.threads
        self.cache = options.cache_dir if options.cache_dir is not None else cache_dir()
        try:
            model = self.core.read_model(str(path))
        except RuntimeError as exc:  # OpenVINO reports a file it cannot parse as a RuntimeError
            raise UsageError(
                f"{path}: OpenVINO cannot read it ({library_message(exc)}); pass an ONNX written by sam2ms-export"
            ) from None
        port = model.input(0)
        input_format = input_format_of(str(port.get_element_type().to_dtype()))
        shape = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
        output = model.output(0).get_names()
        info = reconcile_graph(
            path,
            info,
            input_format,
            tile_of_shape(shape, input_format),
            PROBABILITY_OUTPUT if PROBABILITY_OUTPUT in output else "",
        )
        self.file_precision = info.precision
        # what runs: BF16 wherever the file left float (an INT8 file keeps its INT8 criteria)
        effective = "bf16" if precision == "bf16" and info.precision in ("fp32", "fp16") else info.precision
        self.info = replace(info, precision=effective)
        self._lock = threading.Lock()
        self._compiled: Any = None
        self._streams = 0
        self._lanes: list[_OvLane] = []
        self.compile_seconds: float | None = None
        if gate:  # gate=False: the export and calibration, measuring the gate themselves
            self.accuracy_gate = accuracy_gate(
                self.path,
                self.info.sidecar,
                self.file_precision,
                precision,
                lambda: self._cached_gate(options.allow_failed),
                options.allow_failed,
            )

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
        try:
            self._compiled = self.core.compile_model(str(self.path), self.device, self._config(self.precision, streams))
        except RuntimeError as exc:
            raise UsageError(
                f"{self.path}: OpenVINO cannot compile it for {self.device} ({library_message(exc)}); "
                "pass an ONNX written by sam2ms-export, or try --device CPU"
            ) from None
        self.compile_seconds = time.perf_counter() - started
        self._streams, self._lanes = streams, []

    def _cached_gate(self, allow_failed: bool) -> Verdict:
        """A gate measured at load is measured once per file, precision, OpenVINO version, device and
        criteria on a machine: it is kept beside the compiled models (``CACHE_DIR``).
        """
        criteria = dict(INT8_TARGETS) if self.file_precision == "int8" else asdict(PARITY_THRESHOLDS["bf16"])
        key = {
            "sha256": self.info.sidecar.get("sha256") or cached_sha256(self.path),
            "precision": self.precision,
            "openvino": _ov().__version__,
            "device": self.device_name(),
            "tiles": gate_tiles(self.info.tile),
            "criteria": criteria,
        }
        where = self.cache / "gates" / f"{key['sha256']}.{self.precision}.json" if self.cache else None
        try:
            cached = json.loads(where.read_text()) if where and where.is_file() else {}
        except (OSError, ValueError):
            cached = {}  # unreadable: measured again and rewritten
        if cached.get("key") == key and isinstance(cached.get("gate"), dict):
            return Verdict.from_json(cached["gate"])
        gate = self._measure_gate(allow_failed)
        if where is not None and gate.passed is not None:
            write_json(where, {"key": key, "gate": gate.to_json()})
        return gate

    def _measure_gate(self, allow_failed: bool) -> Verdict:
        """Measured now on the export's synthetic parity tiles against OpenVINO FP32 of the graph
        whose parity with PyTorch the export checked: this file (BF16 on a float file) or the FP32
        ONNX an INT8 file was calibrated from, which must be beside it.
        """
        reference_path, why = self._reference_graph()
        if reference_path is None:
            if allow_failed:
                return Verdict(None, figures={"measured": False, "why": why})
            raise UsageError(
                f"{self.path}: OpenVINO's INT8 accuracy on this file is unrecorded and cannot be measured "
                f"here ({why}); record it with `sam2ms calibrate --openvino` (or sam2ms-export --int8 "
                "--openvino), or run it with --backend onnxruntime"
            )
        tiles = parity_tiles(self.info.tile, gate_tiles(self.info.tile))  # as many as the export's check
        info = ModelInfo(str(reference_path), "onnx", self.info.tile, "fp32", input_format=self.info.input_format)
        as_fp32 = BackendOptions(threads=self.threads, device=self.device, cache_dir=self.cache)
        with OpenVinoBackend(reference_path, info, as_fp32) as fp32:
            reference = fp32.probabilities(tiles)
        verdict = gate_judge(self.file_precision, reference)(self.precision, self.probabilities(tiles))
        return verdict.noted(reference=f"openvino-fp32 of {reference_path.name}", measured_by="runtime")

    def _reference_graph(self) -> tuple[Path | None, str]:
        """The FP32 graph a gate is measured against, or None and why it is not at hand."""
        if self.file_precision != "int8":
            return self.path, ""
        source = self.info.sidecar.get("source_onnx") or {}
        if not source.get("file"):
            return None, "its sidecar names no FP32 source ONNX"
        candidate = file_in_folder(self.path, source["file"], "source_onnx")
        if not candidate.is_file():
            return None, f"{source['file']}, the FP32 ONNX it was calibrated from, is not beside it"
        if source.get("sha256") and cached_sha256(candidate) != source["sha256"]:
            return None, f"{source['file']} beside it is not the FP32 ONNX it was calibrated from (SHA-256 differs)"
        return candidate, ""

    def probabilities(self, tiles: np.ndarray) -> np.ndarray:
        """Probabilities of uint8 RGB windows (N x T x T x 3), one at a time on the first lane: the
        parity checks' way of running a model (the export's and the accuracy gates').
        """
        from sam2ms.metrics import sigmoid
        from sam2ms.preprocess import model_input

        lane = self.lanes(1)[0]
        x = model_input(tiles, self.info.input_format)
        return sigmoid(np.concatenate([lane.infer(x[i : i + 1]) for i in range(len(x))]))

    @override
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

    @override
    def device_name(self) -> str:
        return device_full_name(self.core, self.device)

    @override
    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "openvino_device": self.device,
            "inference_precision": self.precision,
            "accuracy_gate": self.accuracy_gate.to_json() if self.accuracy_gate else None,
            "executed_precision": self.executed_precision(),
            "threads": self.threads,
            "streams": self._streams or None,
            "cache_dir": str(self.cache) if self.cache else None,
            "compile_seconds": round(self.compile_seconds, 3) if self.compile_seconds is not None else None,
        }

    @override
    def close(self) -> None:
        self._lanes, self._compiled = [], None
