"""INT8 on ONNX Runtime CPU: calibration cost, accuracy per method, and speed per quantised graph.

    python benchmarks/int8_bench.py --onnx demo_run/export/model.onnx --calib-data demo_run/calib

For an exported FP32 ``model.onnx`` (tile from its sidecar) and a folder of tiles or scenes:
1. per calibration method (minmax, entropy, percentile): calibration seconds and the held-out
   report against FP32 (mask IoU, F1 drop, max |dp|), and minmax with --auto-exclude;
2. ONNX Runtime CPU throughput of FP32 against INT8 graphs in one process, interleaved tile by
   tile so that all see the same machine state: our TensorRT-oriented Q/DQ graph (symmetric S8S8,
   float biases, Conv/MatMul only), ORT's CPU-oriented QDQ (U8 activations, S8 weights, int32
   biases, ORT defaults) and QOperator graphs, and dynamic MatMul quantisation — each with its
   mask IoU to FP32, so that a faster graph that is less accurate shows it. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import onnxruntime as ort

from sam2ms.artifacts import Sidecar
from sam2ms.calib.data import TileReader, calibration_images, sample_windows
from sam2ms.calib.pipeline import CalibrateOptions, run_calibrate
from sam2ms.errors import CheckFailed
from sam2ms.metrics import mask_iou, sigmoid
from sam2ms.preprocess import model_input
from sam2ms.runtime.backends.base import cpu_name


def _calibrate(args: argparse.Namespace, method: str, auto_exclude: bool, out: Path) -> dict:
    opts = CalibrateOptions(
        onnx=args.onnx,
        calib_data=args.calib_data,
        out=out,
        method=method,
        batches=args.batches,
        holdout=args.holdout,
        auto_exclude=auto_exclude,
        progress=False,
    )
    try:
        s = run_calibrate(opts)
    except CheckFailed as exc:
        if exc.summary is None:
            raise
        s = exc.summary
    r, c = s["accuracy_vs_fp32"], s["calibration"]
    return {
        "method": method,
        "auto_exclude": auto_exclude,
        "seconds": c["seconds"],
        "calibration_seconds": c["calibration_seconds"],
        "mask_iou": round(r["mask_iou"], 4),
        "f1_drop_points": round(100 * r["f1_drop"], 2),
        "max_abs": round(r["max_abs"], 4),
        "passed": r["passed"],
        "layers_in_float": c.get("auto_exclude", {}).get("kept_layers", 0),
    }


def _cpu_graphs(fp32: Path, ours: Path, tiles: np.ndarray, input_format: str, folder: Path) -> dict[str, Path]:
    """The INT8 graphs ONNX Runtime's own tools make for a CPU, beside ours."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = folder / "prepared.onnx"
    quant_pre_process(str(fp32), str(prepared))
    graphs = {"fp32": fp32, "int8 qdq s8s8 (ours, for TensorRT)": ours}
    for name, fmt in (
        ("int8 qdq u8s8 (ORT CPU defaults)", QuantFormat.QDQ),
        ("int8 qoperator u8s8", QuantFormat.QOperator),
    ):
        path = folder / f"{fmt.name}.onnx"
        quantize_static(
            str(prepared),
            str(path),
            TileReader(tiles, 1, input_format),
            quant_format=fmt,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
        graphs[name] = path
    dynamic = folder / "dynamic.onnx"
    quantize_dynamic(
        str(prepared), str(dynamic), op_types_to_quantize=["MatMul"], per_channel=True, weight_type=QuantType.QInt8
    )
    graphs["int8 dynamic MatMul"] = dynamic
    return graphs


def _speed(graphs: dict[str, Path], tiles: np.ndarray, held: np.ndarray, iterations: int, threads: int) -> list[dict]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # Idle sessions' worker threads spin after each run by default and steal the 2 cores from
    # the session being timed (FP32 measured 2x slower interleaved than alone): no spinning.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sessions = {k: ort.InferenceSession(str(v), options, providers=["CPUExecutionProvider"]) for k, v in graphs.items()}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for s in sessions.values():  # warm-up
        s.run(None, {"image": tiles[:1]})
    for i in range(iterations):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, {"image": tiles[i % len(tiles)][None]})
            times[k].append(time.perf_counter() - t0)
    reference = sigmoid(sessions["fp32"].run(None, {"image": held})[0]) >= 0.5
    base = statistics.median(times["fp32"])
    rows = []
    for k, s in sessions.items():
        mask = sigmoid(s.run(None, {"image": held})[0]) >= 0.5
        med = statistics.median(times[k])
        rows.append(
            {
                "graph": k,
                "median_ms": round(1000 * med, 1),
                "tiles_per_s": round(1 / med, 2),
                "speedup_vs_fp32": round(base / med, 2),
                "mask_iou_vs_fp32": round(mask_iou(mask, reference), 4),
                "bytes": graphs[k].stat().st_size,
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onnx", type=Path, required=True, help="FP32 model.onnx written by sam2ms-export")
    p.add_argument("--calib-data", type=Path, required=True)
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--holdout", type=int, default=8)
    p.add_argument("--iterations", type=int, default=10, help="timed tiles per graph")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-methods", action="store_true", help="only the speed comparison")
    args = p.parse_args()

    side = Sidecar.read(args.onnx)
    tile, input_format = int(side.tile or 0), side.input_format
    result: dict = {
        "date": date.today().isoformat(),
        "device": f"{cpu_name()}, {args.threads} threads",
        "onnxruntime": ort.__version__,
        "onnx": str(args.onnx),
        "tile": tile,
    }
    with tempfile.TemporaryDirectory(prefix="sam2ms-int8-bench-") as tmp:
        folder = Path(tmp)
        if not args.skip_methods:
            result["methods"] = [_calibrate(args, m, False, folder / m) for m in ("minmax", "entropy", "percentile")]
            result["methods"].append(_calibrate(args, "minmax", True, folder / "auto"))
        else:
            _calibrate(args, "minmax", False, folder / "minmax")
        calib, held = sample_windows(calibration_images(args.calib_data), tile, [4, min(args.holdout, 4)], seed=0)
        # One tile: ORT keeps all calibration outputs in memory (~6 GB per 1024 px Hiera-T tile).
        graphs = _cpu_graphs(args.onnx, folder / "minmax" / "model.int8.onnx", calib[:1], input_format, folder)
        if not args.skip_methods:
            graphs["int8 qdq s8s8 + auto-exclude (ours)"] = folder / "auto" / "model.int8.onnx"
        result["speed"] = _speed(
            graphs, model_input(calib, input_format), model_input(held, input_format), args.iterations, args.threads
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
