"""``--quantizer modelopt``: the quantiser contract through NVIDIA ModelOpt's ONNX quantiser — its
TensorRT-oriented Q/DQ placement and calibration, our exclusions, FP32 for what stays float.

ModelOpt calibrates inside each quantisation, so :meth:`calibrate` keeps the tiles and every
write re-runs calibration on them; it has no percentile method and no cache we can check.
ModelOpt pins its own onnx/onnxruntime-gpu: install it in its own environment.
"""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from sam2ms.errors import UsageError
from sam2ms.fileio import atomic_write
from sam2ms.progress import Bar

from .graph import QUANTIZED_OPS
from .quantizer import Quantizer

METHODS = {"minmax": "max", "entropy": "entropy"}


class ModelOptQuantizer(Quantizer):
    """INT8 by NVIDIA ModelOpt's ONNX quantiser (Q/DQ placed for TensorRT), behind the Quantizer interface."""

    name = "modelopt"

    def __init__(
        self,
        fp32: str | Path,
        method: str = "minmax",
        *,
        tiles: int = 0,
        seed: int = 0,
        cache: str | Path | None = None,
    ) -> None:
        try:
            with contextlib.redirect_stdout(sys.stderr):  # ModelOpt's log handler binds sys.stdout
                from modelopt.onnx.quantization import quantize  # noqa: F401
        except ImportError as exc:
            raise UsageError(
                "--quantizer modelopt needs NVIDIA ModelOpt: pip install 'nvidia-modelopt[onnx]' (it "
                f"pins its own onnx/onnxruntime-gpu: a separate environment is safest) ({exc})"
            ) from exc
        if method not in METHODS:
            raise UsageError(f"--calib-method {method}: ModelOpt offers {', '.join(METHODS)}")
        if cache:
            raise UsageError("--calib-cache works with --quantizer ort; ModelOpt calibrates on every run")
        super().__init__(fp32, method, tiles=tiles, seed=seed)
        self._tiles: Any = None

    @override
    def prepare(self) -> Path:
        return self.fp32  # ModelOpt pre-processes itself (and an older ORT may fail our way of it)

    @override
    def calibrate(self, reader: Any | None, bar: Bar | None = None) -> None:
        if reader is None:
            raise UsageError("no calibration data: pass --calib-data DIR")
        started = time.perf_counter()
        self._tiles = np.concatenate([batch["image"] for batch in iter(reader.get_next, None)])
        self.calibration_seconds = time.perf_counter() - started

    @override
    def write(self, out: str | Path, keep_float: Iterable[str] = ()) -> Path:
        from modelopt.onnx.quantization import quantize

        if self._tiles is None:
            raise RuntimeError("calibrate() before write()")
        quantized = self.work / "int8.onnx"
        started = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for --json
            quantize(
                str(self.prepared),
                quantize_mode="int8",
                calibration_data={"image": self._tiles},
                calibration_method=METHODS[self.method],
                calibration_eps=["cpu"],
                op_types_to_quantize=list(QUANTIZED_OPS),
                high_precision_dtype="fp32",
                log_level="WARNING",
                nodes_to_exclude=[re.escape(n) + "$" for n in self.default_excluded + list(keep_float)],
                output_path=str(quantized),
            )
        self.calibration_seconds += time.perf_counter() - started
        payload = quantized.read_bytes()
        return atomic_write(out, lambda f: f.write(payload))

    @override
    def facts(self, keep_float: Iterable[str] = ()) -> dict[str, Any]:
        from importlib.metadata import version

        return {
            **super().facts(keep_float),
            "cache": None,
            "calibrator": {"method": METHODS[self.method]},
            "quantizer": f"nvidia-modelopt {version('nvidia-modelopt')} (modelopt.onnx.quantization, int8)",
        }
