"""The ``calibrate`` command (``sam2ms calibrate``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from sam2ms.errors import CheckFailed


def calibrate_command(
    onnx_model: Path = typer.Argument(..., metavar="ONNX", help="The FP32 model.onnx written by sam2ms-export."),
    calib_data: Path | None = typer.Option(
        None, help="Folder of tiles or scenes, or a dataset folder, to calibrate on (images only: see --layout)."
    ),
    layout: str = typer.Option(
        "auto",
        help="How --calib-data is read: auto (a dataset layout where its markers "
        "are, else scenes) | scenes (every raster not named as a label) | "
        "deepglobe | spacenet | massachusetts | folder (their images only).",
    ),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for model.int8.onnx and its sidecar."),
    calib_method: str = typer.Option("minmax", help="minmax | entropy | percentile"),
    calib_batches: int = typer.Option(8, min=1, help="Calibration batches."),
    calib_batch_size: int = typer.Option(4, min=1, help="Tiles per calibration batch."),
    holdout: int = typer.Option(8, min=1, help="Held-out tiles for the INT8-vs-FP32 report (never calibrated on)."),
    calib_cache: Path | None = typer.Option(None, help="Calibration cache (JSON): reused when it matches."),
    seed: int = typer.Option(0, min=0, help="Sampling seed."),
    quantizer: str = typer.Option("ort", help="ort (ONNX Runtime) | modelopt (NVIDIA ModelOpt, when installed)."),
    auto_exclude: bool = typer.Option(
        False,
        "--auto-exclude",
        help="When a target is missed, keep the most sensitive layers in float until it holds (reports which).",
    ),
    reduce_range: bool = typer.Option(
        False,
        "--reduce-range",
        help="7-bit weights: keeps INT8 accurate on "
        "OpenVINO (oneDNN) on CPUs without VNNI, whose 8-bit products saturate.",
    ),
    openvino: bool = typer.Option(
        False,
        "--openvino",
        help="Also measure model.int8.onnx on OpenVINO (extra "
        "[openvino]; FP32, and BF16 where native) on the held-out tiles: the accuracy "
        "gate its OpenVINO backend reads from the sidecar.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable JSON summary on stdout."),
) -> None:
    """Quantise an exported FP32 ONNX to explicit Q/DQ INT8 and report its accuracy against FP32."""
    from rich.console import Console

    from sam2ms.deps import require

    for module in ("onnx", "onnxruntime.quantization", *(("openvino",) if openvino else ())):
        require(module, "sam2ms calibrate")
    from .pipeline import CalibrateOptions, run_calibrate

    console = Console(stderr=True, log_path=False, markup=False)
    opts = CalibrateOptions(
        onnx=onnx_model,
        calib_data=calib_data,
        out=output,
        method=calib_method,
        batches=calib_batches,
        batch_size=calib_batch_size,
        holdout=holdout,
        cache=calib_cache,
        seed=seed,
        auto_exclude=auto_exclude,
        quantizer=quantizer,
        openvino=openvino,
        reduce_range=reduce_range,
        layout=layout,
    )
    try:
        summary = run_calibrate(opts, log=lambda m: console.log(m))
    except CheckFailed as exc:
        if exc.summary:
            _print(exc.summary, as_json)
        raise
    _print(summary, as_json)


def _print(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    r = summary["accuracy_vs_fp32"]
    typer.echo(
        f"{summary['artifact']} ({summary['bytes'] / 2**20:.1f} MB): on {r['tiles']} held-out tiles "
        f"mask IoU to FP32 {r['mask_iou']:.4f}, F1 {100 * r['f1']:.2f}, max |dp| {r['max_abs']:.3f} -> "
        f"{'ok' if r['passed'] else 'target missed'}"
    )
    for precision, gate in (summary.get("openvino") or {}).items():
        if isinstance(gate, dict) and isinstance(gate.get("passed"), bool):
            typer.echo(
                f"  on OpenVINO {precision.upper()}: mask IoU to FP32 {gate['mask_iou']:.4f}, F1 "
                f"{100 * gate['f1']:.2f} -> {'ok' if gate['passed'] else 'target missed'}"
            )
    data = summary["calibration"].get("data")
    if data:
        typer.echo(
            f"calibrated on {data['images']} image(s) of {data['source']} ({data['layout']}"
            + (f"; {data['labels_left_out']} label files left out" if data["labels_left_out"] else "")
            + ")"
        )
    for skipped in summary["skipped_files"]:
        typer.echo(f"skipped {skipped['file']}: {skipped['error']}", err=True)
    if summary["calibration"].get("cache_hit"):
        typer.echo(f"ranges from the calibration cache {summary['calibration']['cache']}: no tile was read for them")
    search = summary["calibration"].get("auto_exclude")
    if search:
        modules = [m for unit in search["kept_float"] for m in unit["modules"]]
        typer.echo(
            f"--auto-exclude kept {search['kept_layers']} of {search['layers']} quantised layers in FP32: "
            + ", ".join(modules)
        )
