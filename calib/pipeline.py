"""``sam2ms calibrate``: FP32 ONNX + calibration folder -> model.int8.onnx + sidecar + accuracy report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.accuracy import Verdict
from sam2ms.artifacts import Sidecar, read_sidecar, sidecar_path, write_sidecar
from sam2ms.data.layouts import AUTO
from sam2ms.digests import sha256_file
from sam2ms.errors import CheckFailed, UsageError
from sam2ms.fileio import ensure_writable_dir
from sam2ms.geo.radiometry import Radiometry
from sam2ms.progress import progress_bar
from sam2ms.roads.score import tile_scores
from sam2ms.runtime.probabilities import onnxruntime_probabilities, openvino_checks, openvino_failures

from .data import CALIB_LAYOUTS, TileReader, calibration_images, sample_windows
from .quantize import METHODS, QUANTIZERS, open_quantizer
from .quantizer import Quantizer
from .report import fp32_probabilities, int8_accuracy
from .sensitivity import layer_units, rank_units, smallest_passing

RANKING_TILES = 4  # calibration tiles used to rank layers for --auto-exclude


@dataclass(frozen=True)
class CalibrateOptions:
    """What one calibration does (``sam2ms calibrate``, or ``sam2ms-export --int8``)."""

    onnx: Path
    calib_data: Path | None
    out: Path
    method: str = "minmax"
    batches: int = 8
    batch_size: int = 4
    holdout: int = 8
    cache: Path | None = None
    seed: int = 0
    auto_exclude: bool = False
    quantizer: str = "ort"
    progress: bool = True
    openvino: bool = False  # also measure OpenVINO's INT8 on the held-out tiles: the gate its backend reads
    reduce_range: bool = False  # 7-bit weights: no int16 saturation in CPU INT8 kernels without VNNI
    layout: str = AUTO  # how calib_data is read (calib.data.CALIB_LAYOUTS): images only, never labels

    def validate(self) -> CalibrateOptions:
        """The option values alone (the one place method and quantizer names are checked); the
        files are checked when the calibration starts.
        """
        if self.method not in METHODS:
            raise UsageError(f"--calib-method {self.method}: use one of {', '.join(METHODS)}")
        if self.quantizer not in QUANTIZERS:
            raise UsageError(f"--quantizer {self.quantizer}: use one of {', '.join(QUANTIZERS)}")
        if self.batches < 1 or self.batch_size < 1 or self.holdout < 1:
            raise UsageError("--calib-batches, --calib-batch-size and --holdout must be at least 1")
        if self.calib_data is None:
            raise UsageError(
                "--calib-data DIR is required (also with --int8): a folder of tiles or scenes like "
                "the ones to deploy on"
            )
        if self.layout not in CALIB_LAYOUTS:
            raise UsageError(f"--layout {self.layout}: use one of {', '.join(CALIB_LAYOUTS)}")
        return self


def _check(opts: CalibrateOptions) -> dict[str, Any]:
    """Refuse bad options and files before any work; returns the FP32 model's sidecar."""
    opts.validate()
    if not opts.onnx.is_file():
        raise UsageError(f"{opts.onnx}: ONNX model not found; export one with sam2ms-export")
    if not sidecar_path(opts.onnx).is_file():
        raise UsageError(f"{opts.onnx}: its sidecar is missing; calibrate an ONNX written by sam2ms-export")
    side = read_sidecar(opts.onnx)
    if side.get("precision") != "fp32":
        raise UsageError(f"{opts.onnx}: is {side.get('precision')}; calibrate the FP32 model.onnx")
    return side


def run_calibrate(opts: CalibrateOptions, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Quantise, report, write; raises CheckFailed (exit 3) after writing when targets are missed."""
    side = _check(opts)
    assert opts.calib_data is not None  # validate() refused None
    out = ensure_writable_dir(opts.out)
    started = time.perf_counter()
    tile = int(side["tile"])
    count = opts.batches * opts.batch_size
    skipped: list[dict[str, str]] = []
    images = calibration_images(opts.calib_data, opts.layout)
    log(f"sampling {count} calibration + {opts.holdout} held-out {tile}px tiles from {images.describe()}")
    calib, held = sample_windows(
        images,
        tile,
        [count, opts.holdout],
        opts.seed,
        on_skip=lambda p, m: skipped.append({"file": str(p), "error": m}),
        radiometry=Radiometry.from_dict(side.get("radiometry")),
    )
    target = out / "model.int8.onnx"
    with open_quantizer(
        opts.quantizer,
        opts.onnx,
        opts.method,
        tiles=count,
        seed=opts.seed,
        cache=opts.cache,
        reduce_range=opts.reduce_range,
    ) as quantizer:
        with progress_bar(f"calibrating ({opts.method})", opts.batches, opts.progress) as bar:
            quantizer.calibrate(
                TileReader(calib, opts.batch_size, Sidecar(side).input_format, progress=bar.advance), bar
            )
        if quantizer.facts().get("cache_hit"):
            log(
                f"ranges reused from the calibration cache {opts.cache} (it matches this model and these "
                "settings): no calibration tile was read"
            )
        quantizer.write(target)
        log("measuring INT8 against FP32 on the held-out tiles")
        p32 = fp32_probabilities(opts.onnx, held)
        report = int8_accuracy(opts.onnx, target, held, p32)

        openvino_records: dict[str, dict[str, Any]] = {}  # OpenVINO's gates by file digest

        def openvino_record_of(path: Path) -> dict[str, Any]:
            """Measured once per written model (the search's accepted trial is the file kept): the
            gates the sidecar records, FP32 and, where this CPU has it natively, BF16.
            """
            digest = sha256_file(path)
            if digest not in openvino_records:
                openvino_records[digest] = openvino_checks(path, "int8", held, p32[:, None])
            return openvino_records[digest]

        def openvino_passes(path: Path) -> bool:
            """With --openvino, a model must also pass every OpenVINO INT8 gate it will record (its
            kernels differ; in BF16 too, where native), or the export would fail on it afterwards.
            """
            return not opts.openvino or not openvino_failures(path.name, openvino_record_of(path))

        kept: list[str] = []
        search = None
        if opts.auto_exclude and quantizer.candidates and not (report.passed and openvino_passes(target)):
            kept, report, search = _auto_exclude(
                quantizer, target, calib[:RANKING_TILES], held, p32, log, opts.progress, openvino_passes
            )
        log("measuring the road graphs of INT8 against FP32 (APLS, TOPO)")
        report = report.noted(**tile_scores(p32, onnxruntime_probabilities(target, held, batch=2)[:, 0]))
        facts = {**quantizer.facts(kept), "data": images.as_dict(), "seconds": round(time.perf_counter() - started, 2)}
    extra: dict[str, Any] = {}
    if opts.openvino:
        log(f"measuring {target.name} on OpenVINO against FP32 on the held-out tiles")
        extra["openvino"] = openvino_record_of(target)
    if search is not None:
        facts["auto_exclude"] = search
    keep = (
        "model",
        "tile",
        "input_format",
        "inputs",
        "outputs",
        "normalization",
        "radiometry",
        "checkpoint",
        "opset",
        "exporter",
    )
    write_sidecar(
        target,
        {
            **{k: side[k] for k in keep if k in side},
            "kind": "onnx",
            "precision": "int8",
            "source_onnx": {"file": opts.onnx.name, "sha256": side.get("sha256")},
            "calibration": {**facts, "skipped_files": skipped},
            "accuracy_vs_fp32": report.to_json(),
            **extra,
        },
    )
    summary = {
        "artifact": str(target),
        "bytes": target.stat().st_size,
        "calibration": facts,
        "accuracy_vs_fp32": report.to_json(),
        "skipped_files": skipped,
        **extra,
    }
    failures = []
    if not report.passed:
        hint = "" if opts.auto_exclude else " (try --auto-exclude)"
        failures.append("INT8 accuracy target missed: " + "; ".join(report.failures) + hint)
    if opts.openvino:
        from sam2ms.runtime.backends.openvino_backend import reduce_range_hint

        failed = openvino_failures(target.name, extra["openvino"])
        hint = reduce_range_hint(facts["weight_bits"]) if failed else ""
        failures += failed + ([hint] if hint else [])
    if failures:
        raise CheckFailed(f"{target.name}: " + " | ".join(failures), summary)
    return summary


def _auto_exclude(
    quantizer: Quantizer,
    target: Path,
    ranking_tiles: np.ndarray,
    held: np.ndarray,
    p32: np.ndarray,
    log: Callable[[str], None],
    progress: bool,
    also_passes: Callable[[Path], bool],
) -> tuple[list[str], Verdict, dict[str, Any]]:
    """Keep the fewest most-sensitive layers in float that make the held-out report pass (and
    ``also_passes``: OpenVINO's gate with --openvino); writes the chosen model to ``target`` and
    returns (kept nodes, its report, what the search did).
    """
    candidates = quantizer.candidates
    units = layer_units(candidates)
    trial = target.with_name(f".{target.name}.trial")
    reference = fp32_probabilities(quantizer.fp32, ranking_tiles)

    def error_with_only(nodes: list[str]) -> float:
        chosen = set(nodes)
        quantizer.write(trial, [c for c in candidates if c not in chosen])
        return float(np.mean(np.square(fp32_probabilities(trial, ranking_tiles) - reference)))

    reports: dict[int, Verdict] = {}
    searched: dict[int, bool] = {}  # what each trial's verdict was, OpenVINO's gate included

    def passes(k: int) -> bool:
        quantizer.write(trial, [n for unit in ranked[:k] for n in unit["nodes"]])
        reports[k] = int8_accuracy(quantizer.fp32, trial, held, p32)
        ok = bool(reports[k].passed) and also_passes(trial)
        log(
            f"  {k} of {len(units)} units in float: mask IoU {reports[k].figures['mask_iou']:.4f}, "
            f"F1 drop {100 * reports[k].figures['f1_drop']:.2f} points -> {'ok' if ok else 'miss'}"
        )
        searched[k] = ok
        return ok

    try:
        with progress_bar(f"ranking {len(candidates)} layers in {len(units)} units", len(units), progress) as bar:
            ranked = rank_units(units, error_with_only, bar.advance)
        for unit in ranked:
            unit["modules"] = [quantizer.modules[n] for n in unit["nodes"]]
        k = smallest_passing(len(ranked), passes)
    finally:
        trial.unlink(missing_ok=True)
    k = len(ranked) if k is None else k
    kept = [n for unit in ranked[:k] for n in unit["nodes"]]
    quantizer.write(target, kept)
    search = {
        "ranking": "output probability MSE vs FP32 with only that unit quantised",
        "ranking_tiles": len(ranking_tiles),
        "layers": len(candidates),
        "units": len(units),
        "kept_float": ranked[:k],
        "kept_layers": len(kept),
        "trials": [
            {
                "units_in_float": n,
                "mask_iou": r.figures["mask_iou"],
                "f1_drop": r.figures["f1_drop"],
                "passed": r.passed,
                "accepted": searched[n],
            }
            for n, r in sorted(reports.items())
        ],
    }
    log(f"--auto-exclude: kept {len(kept)} of {len(candidates)} quantised layers ({k} of {len(units)} units) in float")
    return kept, reports[k], search
