"""FP32 ONNX -> explicit Q/DQ INT8 ONNX: the quantiser contract and ONNX Runtime's quantiser.

Settings that TensorRT (strongly typed) accepts and that keep accuracy (docs/architecture.md, INT8):
symmetric INT8 activations and weights (TensorRT rejects a non-zero zero point), per-channel
weights, biases left in float (TensorRT's parser rejects int32 bias DequantizeLinear), only
Conv/MatMul/Gemm quantised — so LayerNorm, Softmax, GELU (Erf) stay in float — and, excluded by
name, the attention MatMuls whose two inputs are activations (QKᵀ and AV: quantising them drops
feature cosine to ~0.97) and the output head (the Conv that produces the logits); see
:mod:`.graph`.

Calibration and quantisation are separate steps (:class:`Quantizer`): the ranges are collected
once and the Q/DQ graph is then written as often as needed with more nodes kept in float
(``--auto-exclude``) without running the calibration data again. We drive ORT's calibrator
ourselves because ``quantize_static`` cannot pass histogram sizes: its entropy default (128 bins
searched with 128 quantised bins) leaves one candidate threshold, the full range, so "entropy"
silently equals minmax. NVIDIA ModelOpt implements the same contract in :mod:`.modelopt_quantizer`.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from typing_extensions import override

from sam2ms.digests import sha256_file
from sam2ms.errors import UsageError
from sam2ms.fileio import atomic_write
from sam2ms.progress import Bar

from .cache import cache_settings, read_cache, write_cache
from .graph import QUANTIZED_OPS
from .quantizer import Quantizer

METHODS = ("minmax", "entropy", "percentile")
QUANTIZERS = ("ort", "modelopt")
# Histogram settings per method (TensorRT's entropy calibrator uses 2048 bins, 128 quantised).
CALIBRATOR_OPTIONS: dict[str, dict[str, Any]] = {
    "minmax": {"symmetric": True},
    "entropy": {"symmetric": True, "num_bins": 2048, "num_quantized_bins": 128},
    "percentile": {"symmetric": True, "num_bins": 2048, "percentile": 99.999},
}


class _OneBatch:
    """A calibration data reader over a single input."""

    def __init__(self, batch: dict[str, Any]) -> None:
        self._batch: dict[str, Any] | None = batch

    def get_next(self) -> dict[str, Any] | None:
        batch, self._batch = self._batch, None
        return batch


def _compute_with_progress(calibrator: Any, method: str, bar: Bar) -> Any:
    """``calibrator.compute_data()``, with a bar over the tensors for the entropy method, whose
    threshold search (2048 bins, every candidate) takes most of a calibration: ~95 s for the demo
    model, where ONNX Runtime itself shows nothing but a few raw lines.
    """
    collector: Any = getattr(calibrator, "collector", None)
    histograms = getattr(collector, "histogram_dict", None)
    if method != "entropy" or not histograms or not hasattr(collector, "get_entropy_threshold"):
        return calibrator.compute_data()
    search = collector.get_entropy_threshold
    line = bar.line(f"entropy thresholds of {len(histograms)} tensors", len(histograms))

    def counted(*args: Any, **kwargs: Any) -> Any:
        threshold = search(*args, **kwargs)
        line.advance()
        return threshold

    collector.get_entropy_threshold = counted
    try:
        return calibrator.compute_data()
    finally:
        del collector.get_entropy_threshold  # the class's own again


class OrtQuantizer(Quantizer):
    """ONNX Runtime's static quantisation (``--quantizer ort``), with a calibration cache."""

    name = "ort"

    def __init__(
        self,
        fp32: str | Path,
        method: str = "minmax",
        *,
        tiles: int = 0,
        seed: int = 0,
        cache: str | Path | None = None,
        reduce_range: bool = False,
    ) -> None:
        if method not in METHODS:
            raise UsageError(f"--calib-method {method}: use one of {', '.join(METHODS)}")
        super().__init__(fp32, method, tiles=tiles, seed=seed, reduce_range=reduce_range)
        self.cache = Path(cache) if cache else None
        self.ranges = self.work / "ranges.json"
        self.cache_hit = False

    def prepare(self) -> Path:
        """ORT's pre-processing (shape inference, constant folding) for the model to quantise."""
        from onnxruntime.quantization.shape_inference import quant_pre_process

        prepared = self.work / "prepared.onnx"
        quant_pre_process(str(self.fp32), str(prepared), skip_symbolic_shape=False)
        return prepared

    def _method(self) -> Any:
        from onnxruntime.quantization import CalibrationMethod

        return {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }[self.method]

    def calibrate(self, reader: Any | None, bar: Bar | None = None) -> None:
        """Collect activation ranges from ``reader`` — or load them from the cache when it matches."""
        from onnxruntime.quantization import quantize_static
        from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

        if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
            raise UsageError("this onnxruntime has no calibration cache support; pip install -U onnxruntime")
        started = time.perf_counter()
        settings = cache_settings(
            self.method, self.tiles, self.seed, self.default_excluded, CALIBRATOR_OPTIONS[self.method], QUANTIZED_OPS
        )
        model_hash = sha256_file(self.fp32)
        cached = read_cache(self.cache, model_hash, settings) if self.cache else None
        if cached is not None:
            self.ranges.write_text(json.dumps(cached["ort_ranges"]))
            self.cache_hit = True
            return
        if reader is None:
            raise UsageError("no calibration data and no usable --calib-cache: pass --calib-data DIR")
        calibrator = create_calibrator(
            self.prepared,
            list(QUANTIZED_OPS),
            augmented_model_path=str(self.work / "augmented.onnx"),
            calibrate_method=self._method(),
            extra_options=dict(CALIBRATOR_OPTIONS[self.method]),
        )
        with contextlib.redirect_stdout(io.StringIO()):  # ORT's histogram calibrators print raw lines
            # One tile per call: ORT keeps every intermediate output of a call in memory (~6 GB per
            # 1024 px tile for Hiera-T); ranges and histograms accumulate across calls, so the
            # result is the same as for whole batches.
            for batch in iter(reader.get_next, None):
                for name, tiles in batch.items():
                    for i in range(len(tiles)):
                        calibrator.collect_data(_OneBatch({name: tiles[i : i + 1]}))
            save_tensors_data(_compute_with_progress(calibrator, self.method, bar or Bar()), self.ranges)
        self.calibration_seconds = time.perf_counter() - started
        if self.cache:
            write_cache(self.cache, model_hash, settings, json.loads(self.ranges.read_text()))

    @override
    def write(self, out: str | Path, keep_float: Iterable[str] = ()) -> Path:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        if not self.ranges.is_file():
            raise RuntimeError("calibrate() before write()")
        quantized = self.work / "int8.onnx"
        quantize_static(
            str(self.prepared),
            str(quantized),
            None,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZED_OPS),
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=self.default_excluded + list(keep_float),
            calibrate_method=self._method(),
            reduce_range=self.reduce_range,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
            calibration_cache_path=str(self.ranges),
        )
        payload = quantized.read_bytes()
        return atomic_write(out, lambda f: f.write(payload))

    @override
    def facts(self, keep_float: Iterable[str] = ()) -> dict[str, Any]:
        return {
            **super().facts(keep_float),
            "cache": self.cache.name if self.cache else None,
            "cache_hit": self.cache_hit,
            "calibrator": CALIBRATOR_OPTIONS[self.method],
            "quantizer": "onnxruntime.quantization (QDQ, symmetric int8, per-channel weights)",
        }


def open_quantizer(
    name: str,
    fp32: str | Path,
    method: str,
    *,
    tiles: int = 0,
    seed: int = 0,
    cache: str | Path | None = None,
    reduce_range: bool = False,
) -> Quantizer:
    """The quantiser named by ``--quantizer`` (``ort`` or ``modelopt``)."""
    if name == "ort":
        return OrtQuantizer(fp32, method, tiles=tiles, seed=seed, cache=cache, reduce_range=reduce_range)
    if name == "modelopt":
        from .modelopt_quantizer import ModelOptQuantizer

        if reduce_range:
            raise UsageError("--reduce-range works with --quantizer ort (ModelOpt writes 8-bit weights)")
        return ModelOptQuantizer(fp32, method, tiles=tiles, seed=seed, cache=cache)
    raise UsageError(f"--quantizer {name}: use one of {', '.join(QUANTIZERS)}")
