"""``sam2ms-export``: checkpoint -> model.onnx (+ model.fp16.onnx) -> engine.plan, with sidecars.

Order matters for users: the ONNX files (and their sidecars) are written before the plan is
attempted, so a missing TensorRT still leaves usable ONNX; parity failures are reported after
everything is written (exit 3) so that the artifacts can be inspected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.accuracy import gate_tiles, judge_parity, parity_tiles
from sam2ms.artifacts import normalization_record, write_sidecar
from sam2ms.calib.pipeline import CalibrateOptions, run_calibrate
from sam2ms.deps import MissingDependency
from sam2ms.digests import sha256_file
from sam2ms.errors import CheckFailed, UsageError
from sam2ms.fileio import ensure_writable_dir, new_folder_removed_on_failure
from sam2ms.geo.radiometry import Radiometry
from sam2ms.preprocess import INPUT_FORMATS, PROBABILITY_OUTPUT, graph_io, input_shape
from sam2ms.runtime.pipeline import default_overlap

from .onnx_export import export_onnx
from .tensorrt_build import BatchProfile, build_plan, load_tensorrt, parse_size, resolve_targets

STRIDE = 32


@dataclass(frozen=True)
class ExportOptions:
    """Everything ``sam2ms-export`` takes (see the CLI for meanings). ``calibration`` set means
    ``--int8``: the FP32 ONNX is calibrated with those options after its export.
    """

    ckpt: Path
    out: Path
    fp16: bool = False
    tile: int = 1024
    input_format: str = "uint8"
    batch: str = "1:4:8"
    opset: int = 18
    exporter: str = "dynamo"
    onnx_only: bool = False
    builder: str = "auto"
    targets: list[str] | None = None
    workspace: str = "4G"
    timing_cache: Path | None = None
    profiles: int = 1
    calibration: CalibrateOptions | None = None
    check: bool = True
    check_tiles: int | None = None  # None: parity.gate_tiles(tile), enough pixels for a steady figure
    openvino: bool = False  # also record OpenVINO's gates (FP32; BF16 where native; INT8) in the sidecars
    seed: int = 0
    model: str | None = None
    deepness: bool = False  # also model.deepness.onnx, for QGIS' Deepness plugin
    resolution: float | None = None  # cm/px recorded for Deepness (None: the training data's, else 50)

    @property
    def int8(self) -> bool:
        """Whether an INT8 model is calibrated too (calibration options were given)."""
        return self.calibration is not None

    @property
    def plan_precision(self) -> str:
        """The precision the plan is built in: from the last ONNX written, INT8 > FP16 > FP32."""
        return "int8" if self.int8 else "fp16" if self.fp16 else "fp32"

    @property
    def batch_profile(self) -> BatchProfile:
        """The ``--batch MIN:OPT:MAX`` profile of the TensorRT plan, parsed."""
        return BatchProfile.parse(self.batch)

    def validate(self) -> ExportOptions:
        """Every check that needs no model, so that bad input fails before minutes of export."""
        if self.tile <= 0 or self.tile % STRIDE:
            raise UsageError(f"--tile {self.tile}: must be a positive multiple of {STRIDE}")
        if self.input_format not in INPUT_FORMATS:
            raise UsageError(f"--input {self.input_format}: use one of {', '.join(INPUT_FORMATS)}")
        if self.check_tiles is not None and self.check_tiles < 1:
            raise UsageError("--check-tiles must be at least 1")
        if self.openvino and not self.check:
            raise UsageError("--openvino measures OpenVINO's parity with PyTorch, which --no-check skips; drop one")
        if self.profiles < 1:
            raise UsageError(f"--profiles {self.profiles}: at least 1")
        if self.resolution is not None and not 0 < self.resolution <= 1e6:
            raise UsageError(f"--resolution {self.resolution}: a ground sampling distance in cm/px, above 0")
        if self.resolution is not None and not self.deepness:
            raise UsageError("--resolution is recorded in model.deepness.onnx: add --deepness, or drop it")
        self.batch_profile  # noqa: B018 - parsing is the check
        if self.calibration is not None:
            self.calibration.validate()
        parse_size(self.workspace)
        if not self.onnx_only:
            try:
                trt, name = load_tensorrt(self.builder)
            except MissingDependency:
                pass  # the ONNX files are still written; the plan step names what to install
            else:
                resolve_targets(trt, name, self.targets, self.plan_precision)
        if not Path(self.ckpt).is_file():
            raise UsageError(f"--ckpt {self.ckpt}: checkpoint not found")
        ensure_writable_dir(self.out)
        return self


def _export_deepness(
    opts: ExportOptions,
    model: Any,
    raw: dict[str, Any],
    common: dict[str, Any],
    reference: np.ndarray | None,
    tiles: np.ndarray | None,
    model_onnx: np.ndarray | None,
    failures: list[str],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Write model.deepness.onnx (the sigmoid inside, the plugin's metadata) and its sidecar; with
    the check, its parity with PyTorch (model.onnx's gate) and its probabilities, fed the way the
    plugin feeds them, against model.onnx's sigmoid on the same tiles. Failures are appended.
    """
    from .deepness import (
        DEEPNESS_FILE,
        DEFAULT_RESOLUTION_CM,
        deepness_metadata,
        deepness_probabilities,
        export_deepness,
        judge_against_model_onnx,
        training_resolution,
    )

    resolution, why = (opts.resolution, "--resolution") if opts.resolution else training_resolution(raw)
    if resolution is None:
        log(f"Deepness: {why}; recording {DEFAULT_RESOLUTION_CM:g} cm/px (DeepGlobe's): pass --resolution CM")
        resolution, why = DEFAULT_RESOLUTION_CM, f"assumed (DeepGlobe's): {why}"
    metadata = deepness_metadata(opts.tile, default_overlap(opts.tile), resolution)
    path = Path(opts.out) / DEEPNESS_FILE
    log(f"exporting {DEEPNESS_FILE} for QGIS' Deepness plugin ({resolution:g} cm/px, {why})")
    started = time.perf_counter()
    exported = export_deepness(model, path, opts.tile, metadata)
    parity = vs_model_onnx = None
    if reference is not None and tiles is not None and model_onnx is not None:
        probabilities = deepness_probabilities(path, tiles, metadata)
        verdict = judge_parity("fp32", reference, probabilities[:, None])
        against = judge_against_model_onnx(probabilities, model_onnx[:, 0])
        parity, vs_model_onnx = verdict.to_json(), against.to_json()
        failures += [f"{DEEPNESS_FILE}: {f}" for f in (*verdict.failures, *against.failures)]
    io = graph_io(opts.tile, "float32")
    io["outputs"][0].update(name=PROBABILITY_OUTPUT, meaning="road probability (the sigmoid is in the graph)")
    fields = {
        **common,
        **io,
        "kind": "onnx",
        "precision": "fp32",
        "opset": exported.opset,
        "exporter": exported.exporter,
        "normalization": normalization_record("the caller (Deepness: / 255, then standardization_mean / std)"),
        "parity": parity,
        "deepness": {"metadata": metadata, "resolution_from": why, "vs_model_onnx": vs_model_onnx},
    }
    write_sidecar(path, fields)
    seconds = round(time.perf_counter() - started, 2)
    return {
        "artifact": str(path),
        "precision": "fp32",
        "bytes": path.stat().st_size,
        "seconds": seconds,
        "parity": parity,
    }


def run_export(opts: ExportOptions, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run the export; returns the JSON summary. Raises CheckFailed (exit 3) after writing
    everything when a parity check (or, with ``int8``, the INT8 accuracy target) failed.
    The plan is built from the last precision written: INT8 > FP16 > FP32. An export refused
    before it wrote anything leaves no output folder it created.
    """
    with new_folder_removed_on_failure(opts.out):
        return _run_export(opts, log)


def _run_export(opts: ExportOptions, log: Callable[[str], None]) -> dict[str, Any]:
    from sam2ms.models import create_model
    from sam2ms.models.checkpoint import read_checkpoint
    from sam2ms.runtime.probabilities import onnxruntime_probabilities, openvino_checks, openvino_failures

    from .parity import torch_probabilities

    opts.validate()
    out = Path(opts.out)
    ckpt = read_checkpoint(opts.ckpt)
    model = create_model(opts.model or ckpt.model_name, checkpoint=opts.ckpt).eval()
    common = {
        "model": model.name,
        "tile": opts.tile,
        **graph_io(opts.tile, opts.input_format),
        "normalization": normalization_record("the graph" if opts.input_format == "uint8" else "the caller"),
        "radiometry": Radiometry.from_dict(ckpt.raw.get("radiometry")).as_dict(),
        "checkpoint": {"path": str(opts.ckpt), "sha256": sha256_file(opts.ckpt), "kind": ckpt.kind},
    }
    artifacts: list[dict[str, Any]] = []
    failures: list[str] = []

    log(
        f"exporting {model.name} to ONNX at {opts.tile}x{opts.tile} ({opts.exporter} exporter, opset {opts.opset}, "
        f"{opts.input_format} input)"
    )
    fp32 = export_onnx(model, out / "model.onnx", opts.tile, opts.opset, opts.exporter, opts.input_format)
    onnx_files = [("fp32", fp32.path, fp32.seconds)]
    if opts.fp16:
        from .fp16 import KEEP_FP32_OPS, convert_fp16

        log("converting to FP16 (LayerNorm, Softmax, reductions, Erf and I/O kept in FP32)")
        started = time.perf_counter()
        convert_fp16(fp32.path, out / "model.fp16.onnx")
        onnx_files.append(("fp16", out / "model.fp16.onnx", time.perf_counter() - started))

    reference = tiles = None
    if opts.check:
        count = opts.check_tiles or gate_tiles(opts.tile)
        log(f"checking parity with PyTorch on {count} synthetic tiles")
        tiles = parity_tiles(opts.tile, count, opts.seed)
        reference = torch_probabilities(model, tiles)
    parities: dict[str, dict[str, Any]] = {}
    fp32_probabilities = None  # model.onnx's, which model.deepness.onnx must equal
    for precision, path, seconds in onnx_files:
        parity = None
        if opts.check:
            probabilities = onnxruntime_probabilities(path, tiles)  # type: ignore[arg-type]
            fp32_probabilities = probabilities if precision == "fp32" else fp32_probabilities
            verdict = judge_parity(precision, reference, probabilities)  # type: ignore[arg-type]
            parity = parities[precision] = verdict.to_json()
            if not verdict.passed:
                failures.append(f"{path.name} ({precision}): " + "; ".join(verdict.failures))
        fields = {
            **common,
            "kind": "onnx",
            "precision": precision,
            "opset": fp32.opset,
            "exporter": fp32.exporter,
            "onnx_nodes": {"exported": fp32.nodes_exported, "slim": fp32.nodes_slim} if precision == "fp32" else None,
            "parity": parity,
        }
        if precision == "fp16":
            fields["kept_fp32_ops"] = list(KEEP_FP32_OPS)
        if opts.openvino:
            log(f"checking {path.name} on OpenVINO")
            fields["openvino"] = openvino_checks(path, precision, tiles, reference)  # type: ignore[arg-type]
            failures += openvino_failures(path.name, fields["openvino"])
        write_sidecar(path, fields)
        artifacts.append(
            {
                "artifact": str(path),
                "precision": precision,
                "bytes": path.stat().st_size,
                "seconds": round(seconds, 2),
                "parity": parity,
            }
        )

    if opts.deepness:
        artifacts.append(
            _export_deepness(opts, model, ckpt.raw, common, reference, tiles, fp32_probabilities, failures, log)
        )

    if opts.calibration is not None:
        try:
            cal = run_calibrate(replace(opts.calibration, onnx=fp32.path, out=out, openvino=opts.openvino), log)
        except CheckFailed as exc:
            if exc.summary is None:
                raise
            cal = exc.summary
            failures.append(str(exc))
        artifacts.append(
            {
                "artifact": cal["artifact"],
                "precision": "int8",
                "bytes": cal["bytes"],
                "seconds": cal["calibration"]["seconds"],
                "parity": None,
                "accuracy_vs_fp32": cal["accuracy_vs_fp32"],
                "layers_in_float": cal["calibration"].get("auto_exclude", {}).get("kept_layers", 0),
            }
        )
        onnx_files.append(("int8", Path(cal["artifact"]), cal["calibration"]["seconds"]))
        parities["int8"] = cal["accuracy_vs_fp32"]

    if not opts.onnx_only:
        precision, source, _ = onnx_files[-1]
        log(f"building the {precision.upper()} TensorRT plan from {source.name}")
        facts = build_plan(
            source,
            out / "engine.plan",
            builder=opts.builder,
            shapes=[input_shape(opts.input_format, opts.tile, n) for n in opts.batch_profile.as_list()],
            workspace=parse_size(opts.workspace),
            targets=opts.targets,
            timing_cache=opts.timing_cache,
            profiles=opts.profiles,
            precision=precision,
        )
        plan = out / "engine.plan"
        write_sidecar(
            plan,
            {
                **common,
                "kind": "tensorrt-plan",
                "precision": precision,
                "onnx": {"file": source.name, "sha256": sha256_file(source)},
                "parity_of_source_onnx": parities.get(precision),
                **facts,
            },
        )
        artifacts.append(
            {
                "artifact": str(plan),
                "precision": precision,
                "bytes": plan.stat().st_size,
                "seconds": facts["build_seconds"],
                "parity": None,
                "builder": facts["builder"],
                "targets": facts["targets"],
            }
        )

    summary = {
        "model": model.name,
        "tile": opts.tile,
        "out": str(out),
        "artifacts": artifacts,
        "checked": opts.check,
        "passed": not failures,
    }
    if failures:
        raise CheckFailed("check failed: " + " | ".join(failures), summary)
    return summary
