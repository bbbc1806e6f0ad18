"""``sam2ms calibrate``: FP32 ONNX + calibration folder -> model.int8.onnx + sidecar + accuracy report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sam2ms.errors import CheckFailed, UsageError
from sam2ms.export.sidecar import read_sidecar, sidecar_path, write_sidecar
from sam2ms.fileio import ensure_writable_dir

from .data import TileReader, sample_windows
from .quantize import METHODS, quantize_int8
from .report import int8_accuracy


@dataclass
class CalibrateOptions:
    onnx: Path
    calib_data: Path | None
    out: Path
    method: str = "minmax"
    batches: int = 8
    batch_size: int = 4
    holdout: int = 8
    cache: Path | None = None
    seed: int = 0


def run_calibrate(opts: CalibrateOptions, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Quantise, report, write; raises CheckFailed (exit 3) after writing when targets are missed."""
    if opts.method not in METHODS:
        raise UsageError(f"--calib-method {opts.method}: use one of {', '.join(METHODS)}")
    if opts.batches < 1 or opts.batch_size < 1 or opts.holdout < 1:
        raise UsageError("--calib-batches, --calib-batch-size and --holdout must be at least 1")
    if not opts.onnx.is_file():
        raise UsageError(f"{opts.onnx}: ONNX model not found; export one with sam2ms-export")
    if not sidecar_path(opts.onnx).is_file():
        raise UsageError(f"{opts.onnx}: its sidecar is missing; calibrate an ONNX written by sam2ms-export")
    side = read_sidecar(opts.onnx)
    if side.get("precision") != "fp32":
        raise UsageError(f"{opts.onnx}: is {side.get('precision')}; calibrate the FP32 model.onnx")
    if opts.calib_data is None:
        raise UsageError("--calib-data DIR is required: a folder of tiles or scenes like the ones to deploy on")
    out = ensure_writable_dir(opts.out)
    tile = int(side["tile"])
    count = opts.batches * opts.batch_size
    skipped: list[dict[str, str]] = []
    log(f"sampling {count} calibration + {opts.holdout} held-out {tile}px tiles from {opts.calib_data}")
    calib, held = sample_windows(opts.calib_data, tile, [count, opts.holdout], opts.seed,
                                 on_skip=lambda p, m: skipped.append({"file": str(p), "error": m}))
    log(f"calibrating ({opts.method}) and writing Q/DQ INT8")
    target = out / "model.int8.onnx"
    facts = quantize_int8(opts.onnx, target, reader=TileReader(calib, opts.batch_size), method=opts.method,
                          tiles=count, seed=opts.seed, cache=opts.cache)
    log("measuring INT8 against FP32 on the held-out tiles")
    report = int8_accuracy(opts.onnx, target, held)
    keep = ("model", "tile", "inputs", "outputs", "normalization", "checkpoint", "opset", "exporter")
    write_sidecar(target, {**{k: side[k] for k in keep if k in side}, "kind": "onnx", "precision": "int8",
                           "source_onnx": {"file": opts.onnx.name, "sha256": side.get("sha256")},
                           "calibration": {**facts, "skipped_files": skipped}, "accuracy_vs_fp32": report})
    summary = {"artifact": str(target), "bytes": target.stat().st_size, "calibration": facts,
               "accuracy_vs_fp32": report, "skipped_files": skipped}
    if not report["passed"]:
        raise CheckFailed(f"{target.name}: INT8 accuracy target missed: " + "; ".join(report["failures"]), summary)
    return summary
