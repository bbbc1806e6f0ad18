"""FP32 ONNX -> explicit Q/DQ INT8 ONNX with ONNX Runtime's static quantisation.

Settings that TensorRT (strongly typed) accepts and that keep accuracy (DESIGN.md, INT8):
symmetric INT8 activations and weights (TensorRT rejects a non-zero zero point), per-channel
weights, biases left in float (TensorRT's parser rejects int32 bias DequantizeLinear), only
Conv/MatMul/Gemm quantised — so LayerNorm, Softmax, GELU (Erf) stay in float — and, excluded by
name, the attention MatMuls whose two inputs are activations (QKᵀ and AV: quantising them drops
feature cosine to ~0.97) and the output head (the Conv that produces the logits).

Calibration and quantisation are separate steps (:class:`Int8Quantizer`): the ranges are
collected once, for every tensor a quantised op could touch, and the Q/DQ graph is then written
as often as needed with more nodes kept in float (``--auto-exclude``) without running the
calibration data again. We drive ORT's calibrator ourselves because ``quantize_static`` cannot
pass histogram sizes: its entropy default (128 bins searched with 128 quantised bins) leaves one
candidate threshold, the full range, so "entropy" silently equals minmax.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import onnx

from sam2ms.errors import UsageError
from sam2ms.fileio import atomic_write, read_format_json, write_json

METHODS = ("minmax", "entropy", "percentile")
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
CACHE_FORMAT = "sam2ms-calibration-cache"
# Histogram settings per method (TensorRT's entropy calibrator uses 2048 bins, 128 quantised).
CALIBRATOR_OPTIONS: dict[str, dict[str, Any]] = {
    "minmax": {"symmetric": True},
    "entropy": {"symmetric": True, "num_bins": 2048, "num_quantized_bins": 128},
    "percentile": {"symmetric": True, "num_bins": 2048, "percentile": 99.999},
}


def _method(name: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    if name not in METHODS:
        raise UsageError(f"--calib-method {name}: use one of {', '.join(METHODS)}")
    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[name]


def default_exclusions(model: onnx.ModelProto) -> list[str]:
    """Node names to keep in float: activation x activation MatMuls, and the head Conv."""
    initializers = {t.name for t in model.graph.initializer}
    constants = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    weights = initializers | constants
    excluded = [n.name for n in model.graph.node
                if n.op_type == "MatMul" and not any(i in weights for i in n.input)]
    producer = {o: n for n in model.graph.node for o in n.output}
    # Walk back from the output to the last Conv: the one-channel head.
    frontier, seen = [model.graph.output[0].name], set()
    while frontier:
        node = producer.get(frontier.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Conv":
            excluded.append(node.name)
            break
        frontier += list(node.input)
    return excluded


def module_names(model: onnx.ModelProto, nodes: Iterable[str]) -> dict[str, str]:
    """The PyTorch module behind each node, from its parameter names (dynamo keeps them on Conv
    weights, and on the bias Add after a MatMul whose weight became a transposed constant) —
    onnxslim drops the exporter's node metadata, so this is how a report can say which layer."""
    initializers = {t.name for t in model.graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    wanted, found = set(nodes), {}
    for node in model.graph.node:
        if node.name not in wanted:
            continue
        near = list(node.input) + [i for c in consumers.get(node.output[0], []) if c.op_type == "Add" for i in c.input]
        params = [i for i in near if i in initializers and "." in i]
        found[node.name] = params[0].rsplit(".", 1)[0] if params else node.name
    return found


def model_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _cache_settings(method: str, tiles: int, seed: int, excluded: list[str]) -> dict[str, Any]:
    return {"method": method, "tiles": tiles, "seed": seed, "symmetric": True, "per_channel": True,
            "calibrator": CALIBRATOR_OPTIONS[method], "quantized_ops": list(QUANTIZED_OPS),
            "excluded_nodes": sorted(excluded)}


def read_cache(path: Path, model_hash: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    """Our cache file if it exists; refused (UsageError) when it belongs to another model/settings."""
    if not path.is_file():
        return None
    data = read_format_json(path, CACHE_FORMAT, f"--calib-cache {path}", "delete it to recalibrate")
    if data.get("model_sha256") != model_hash:
        raise UsageError(f"--calib-cache {path}: made for another model (sha256 {data.get('model_sha256', '?')[:12]}…, "
                         f"this one is {model_hash[:12]}…); use another cache file or delete it")
    if data.get("settings") != settings:
        raise UsageError(f"--calib-cache {path}: made with other settings {data.get('settings')}; use another "
                         "cache file or delete it")
    return data


class _OneBatch:
    """A calibration data reader over a single input."""

    def __init__(self, batch: dict[str, Any]) -> None:
        self._batch: dict[str, Any] | None = batch

    def get_next(self) -> dict[str, Any] | None:
        batch, self._batch = self._batch, None
        return batch


class Int8Quantizer:
    """One FP32 model: shape-prepared once, calibrated once (or from a cache), then written as Q/DQ
    INT8 with any extra set of nodes kept in float. Use as a context manager (it owns a temp dir)."""

    def __init__(self, fp32: str | Path, method: str = "minmax", *, tiles: int = 0, seed: int = 0,
                 cache: str | Path | None = None) -> None:
        _method(method)
        self.fp32, self.method, self.tiles, self.seed = Path(fp32), method, tiles, seed
        self.cache = Path(cache) if cache else None
        self._tmp = tempfile.TemporaryDirectory(prefix="sam2ms-int8-")
        self.prepared = self._prepare()
        model = onnx.load(str(self.prepared), load_external_data=False)
        self.default_excluded = default_exclusions(model)
        #: Quantised nodes, in graph order: what --auto-exclude may keep in float.
        self.candidates = [n.name for n in model.graph.node
                           if n.op_type in QUANTIZED_OPS and n.name not in set(self.default_excluded)]
        #: node name -> PyTorch module name, for reports.
        self.modules = module_names(model, self.candidates)
        self.ranges = Path(self._tmp.name) / "ranges.json"
        self.cache_hit = False
        self.calibration_seconds = 0.0

    def _prepare(self) -> Path:
        """ORT's pre-processing (shape inference, constant folding) for the model to quantise."""
        from onnxruntime.quantization.shape_inference import quant_pre_process

        prepared = Path(self._tmp.name) / "prepared.onnx"
        quant_pre_process(str(self.fp32), str(prepared), skip_symbolic_shape=False)
        return prepared

    def __enter__(self) -> Int8Quantizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def calibrate(self, reader: Any | None) -> None:
        """Collect activation ranges from ``reader`` — or load them from the cache when it matches."""
        from onnxruntime.quantization import quantize_static
        from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

        if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
            raise UsageError("this onnxruntime has no calibration cache support; pip install -U onnxruntime")
        started = time.perf_counter()
        settings = _cache_settings(self.method, self.tiles, self.seed, self.default_excluded)
        model_hash = model_sha256(self.fp32)
        cached = read_cache(self.cache, model_hash, settings) if self.cache else None
        if cached is not None:
            self.ranges.write_text(json.dumps(cached["ort_ranges"]))
            self.cache_hit = True
            return
        if reader is None:
            raise UsageError("no calibration data and no usable --calib-cache: pass --calib-data DIR")
        calibrator = create_calibrator(self.prepared, list(QUANTIZED_OPS),
                                       augmented_model_path=str(Path(self._tmp.name) / "augmented.onnx"),
                                       calibrate_method=_method(self.method),
                                       extra_options=dict(CALIBRATOR_OPTIONS[self.method]))
        with contextlib.redirect_stdout(sys.stderr):  # ORT's histogram calibrators print progress
            # One tile per call: ORT keeps every intermediate output of a call in memory (~6 GB per
            # 1024 px tile for Hiera-T); ranges and histograms accumulate across calls, so the
            # result is the same as for whole batches.
            for batch in iter(reader.get_next, None):
                for name, tiles in batch.items():
                    for i in range(len(tiles)):
                        calibrator.collect_data(_OneBatch({name: tiles[i:i + 1]}))
            save_tensors_data(calibrator.compute_data(), self.ranges)
        self.calibration_seconds = time.perf_counter() - started
        if self.cache:
            ranges = json.loads(self.ranges.read_text())
            write_json(self.cache, {"format": CACHE_FORMAT, "model_sha256": model_hash, "settings": settings,
                                    "scales": _scales(ranges), "ort_ranges": ranges})

    def write(self, out: str | Path, keep_float: Iterable[str] = ()) -> Path:
        """Write the Q/DQ model from the collected ranges; ``keep_float`` nodes stay unquantised."""
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        if not self.ranges.is_file():
            raise RuntimeError("calibrate() before write()")
        quantized = Path(self._tmp.name) / "int8.onnx"
        quantize_static(str(self.prepared), str(quantized), None, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(QUANTIZED_OPS), per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=self.default_excluded + list(keep_float),
                        calibrate_method=_method(self.method),
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
                        calibration_cache_path=str(self.ranges))
        payload = quantized.read_bytes()
        return atomic_write(out, lambda f: f.write(payload))

    def facts(self, keep_float: Iterable[str] = ()) -> dict[str, Any]:
        """What the sidecar records about this quantisation."""
        return {"method": self.method, "calibration_tiles": self.tiles, "seed": self.seed,
                "excluded_nodes": self.default_excluded + list(keep_float),
                "cache": str(self.cache) if self.cache else None, "cache_hit": self.cache_hit,
                "quantizer": "onnxruntime.quantization (QDQ, symmetric int8, per-channel weights)",
                "calibrator": CALIBRATOR_OPTIONS[self.method],
                "calibration_seconds": round(self.calibration_seconds, 2)}


class ModelOptQuantizer(Int8Quantizer):
    """The same contract through NVIDIA ModelOpt's ONNX quantiser (``--quantizer modelopt``): its
    TensorRT-oriented Q/DQ placement and calibration, our exclusions, FP32 for what stays float.
    ModelOpt calibrates inside each quantisation, so every write re-runs calibration on the tiles
    kept by :meth:`calibrate`; it has no percentile method and no cache we can check."""

    METHODS = {"minmax": "max", "entropy": "entropy"}

    def __init__(self, fp32: str | Path, method: str = "minmax", *, tiles: int = 0, seed: int = 0,
                 cache: str | Path | None = None) -> None:
        try:
            with contextlib.redirect_stdout(sys.stderr):  # ModelOpt's log handler binds sys.stdout
                from modelopt.onnx.quantization import quantize  # noqa: F401
        except ImportError as exc:
            raise UsageError("--quantizer modelopt needs NVIDIA ModelOpt: pip install 'nvidia-modelopt[onnx]' (it "
                             f"pins its own onnx/onnxruntime-gpu: a separate environment is safest) ({exc})") from exc
        if method not in self.METHODS:
            raise UsageError(f"--calib-method {method}: ModelOpt offers {', '.join(self.METHODS)}")
        if cache:
            raise UsageError("--calib-cache works with --quantizer ort; ModelOpt calibrates on every run")
        super().__init__(fp32, method, tiles=tiles, seed=seed)
        self._tiles: Any = None

    def _prepare(self) -> Path:
        return self.fp32  # ModelOpt pre-processes itself (and an older ORT may fail our way of it)

    def calibrate(self, reader: Any | None) -> None:
        import numpy as np

        if reader is None:
            raise UsageError("no calibration data: pass --calib-data DIR")
        started = time.perf_counter()
        self._tiles = np.concatenate([batch["image"] for batch in iter(reader.get_next, None)])
        self.calibration_seconds = time.perf_counter() - started

    def write(self, out: str | Path, keep_float: Iterable[str] = ()) -> Path:
        import re

        from modelopt.onnx.quantization import quantize

        if self._tiles is None:
            raise RuntimeError("calibrate() before write()")
        quantized = Path(self._tmp.name) / "int8.onnx"
        started = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout for --json
            quantize(str(self.prepared), quantize_mode="int8", calibration_data={"image": self._tiles},
                     calibration_method=self.METHODS[self.method], calibration_eps=["cpu"],
                     op_types_to_quantize=list(QUANTIZED_OPS), high_precision_dtype="fp32", log_level="WARNING",
                     nodes_to_exclude=[re.escape(n) + "$" for n in self.default_excluded + list(keep_float)],
                     output_path=str(quantized))
        self.calibration_seconds += time.perf_counter() - started
        payload = quantized.read_bytes()
        return atomic_write(out, lambda f: f.write(payload))

    def facts(self, keep_float: Iterable[str] = ()) -> dict[str, Any]:
        from importlib.metadata import version

        return {**super().facts(keep_float), "cache": None, "calibrator": {"method": self.METHODS[self.method]},
                "quantizer": f"nvidia-modelopt {version('nvidia-modelopt')} (modelopt.onnx.quantization, int8)"}


QUANTIZERS: dict[str, type[Int8Quantizer]] = {"ort": Int8Quantizer, "modelopt": ModelOptQuantizer}


def open_quantizer(name: str, fp32: str | Path, method: str, **kwargs: Any) -> Int8Quantizer:
    """The quantiser named by ``--quantizer`` (``ort`` or ``modelopt``)."""
    if name not in QUANTIZERS:
        raise UsageError(f"--quantizer {name}: use one of {', '.join(QUANTIZERS)}")
    return QUANTIZERS[name](fp32, method, **kwargs)


def quantize_int8(fp32: str | Path, out: str | Path, *, reader: Any | None, method: str = "minmax",
                  tiles: int = 0, seed: int = 0, cache: str | Path | None = None) -> dict[str, Any]:
    """Calibrate and write the Q/DQ INT8 model in one go; returns what the sidecar records.
    ``reader`` may be None when ``cache`` holds the ranges (then no calibration data is read)."""
    started = time.perf_counter()
    with Int8Quantizer(fp32, method, tiles=tiles, seed=seed, cache=cache) as quantizer:
        quantizer.calibrate(reader)
        quantizer.write(out)
        return {**quantizer.facts(), "seconds": round(time.perf_counter() - started, 2)}


def _scales(ranges: dict[str, Any]) -> dict[str, float]:
    """Symmetric INT8 scale per tensor (max |range| / 127), for people reading the cache."""
    import numpy as np

    def value(x: Any) -> Any:  # ORT serialises numpy scalars as {"data": ..., "dtype": ...}
        return x["data"] if isinstance(x, dict) else x

    return {name: float(np.max(np.abs([value(v["lowest"]), value(v["highest"])]))) / 127.0
            for name, v in ranges.get("data", {}).items() if isinstance(v, dict) and "lowest" in v}
