"""FP32 ONNX -> explicit Q/DQ INT8 ONNX with ONNX Runtime's static quantisation.

Settings that TensorRT (strongly typed) accepts and that keep accuracy (DESIGN.md, INT8):
symmetric INT8 activations and weights (TensorRT rejects a non-zero zero point), per-channel
weights, biases left in float (TensorRT's parser rejects int32 bias DequantizeLinear), only
Conv/MatMul/Gemm quantised — so LayerNorm, Softmax, GELU (Erf) stay in float — and, excluded by
name, the attention MatMuls whose two inputs are activations (QKᵀ and AV: quantising them drops
feature cosine to ~0.97) and the output head (the Conv that produces the logits).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import onnx

from sam2ms.errors import UsageError
from sam2ms.fileio import atomic_write, read_format_json, write_json

METHODS = ("minmax", "entropy", "percentile")
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
CACHE_FORMAT = "sam2ms-calibration-cache"


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


def model_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _cache_settings(method: str, tiles: int, seed: int, excluded: list[str]) -> dict[str, Any]:
    return {"method": method, "tiles": tiles, "seed": seed, "symmetric": True, "per_channel": True,
            "quantized_ops": list(QUANTIZED_OPS), "excluded_nodes": sorted(excluded)}


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


def quantize_int8(fp32: str | Path, out: str | Path, *, reader: Any | None, method: str = "minmax",
                  tiles: int = 0, seed: int = 0, cache: str | Path | None = None,
                  extra_exclude: list[str] | None = None) -> dict[str, Any]:
    """Write the Q/DQ INT8 model; returns what the sidecar records. ``reader`` may be None when
    ``cache`` holds the ranges (then no calibration data is read at all)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if "calibration_cache_path" not in inspect.signature(quantize_static).parameters:
        raise UsageError("this onnxruntime has no calibration cache support; pip install -U onnxruntime")
    calibrate_method = _method(method)
    fp32, out = Path(fp32), Path(out)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sam2ms-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=False)
        model = onnx.load(str(prepared))
        excluded = default_exclusions(model) + list(extra_exclude or [])
        settings = _cache_settings(method, tiles, seed, excluded)
        model_hash = model_sha256(fp32)
        cached = read_cache(Path(cache), model_hash, settings) if cache else None
        ort_cache = Path(tmp) / "ranges.json"
        if cached is not None:
            ort_cache.write_text(json.dumps(cached["ort_ranges"]))
        elif reader is None:
            raise UsageError("no calibration data and no usable --calib-cache: pass --calib-data DIR")
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(str(prepared), str(quantized), reader, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(QUANTIZED_OPS), per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=excluded, calibrate_method=calibrate_method,
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                       "QuantizeBias": False},
                        calibration_cache_path=str(ort_cache))
        payload = quantized.read_bytes()
        if cache and cached is None:
            ranges = json.loads(ort_cache.read_text())
            write_json(cache, {"format": CACHE_FORMAT, "model_sha256": model_hash, "settings": settings,
                               "scales": _scales(ranges), "ort_ranges": ranges})
    atomic_write(out, lambda f: f.write(payload))
    return {"method": method, "calibration_tiles": tiles, "seed": seed, "excluded_nodes": excluded,
            "cache": str(cache) if cache else None, "cache_hit": cached is not None,
            "quantizer": "onnxruntime.quantization (QDQ, symmetric int8, per-channel weights)",
            "seconds": round(time.perf_counter() - started, 2)}


def _scales(ranges: dict[str, Any]) -> dict[str, float]:
    """Symmetric INT8 scale per tensor (max |range| / 127), for people reading the cache."""
    import numpy as np

    def value(x: Any) -> Any:  # ORT serialises numpy scalars as {"data": ..., "dtype": ...}
        return x["data"] if isinstance(x, dict) else x

    return {name: float(np.max(np.abs([value(v["lowest"]), value(v["highest"])]))) / 127.0
            for name, v in ranges.get("data", {}).items() if isinstance(v, dict) and "lowest" in v}
