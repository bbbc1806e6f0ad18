"""The ``export`` command, shared by ``sam2ms export`` and the ``sam2ms-export`` alias."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from sam2ms.errors import CheckFailed
from sam2ms.preprocess import MAX_TILE


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _table(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{summary['model']} @ {summary['tile']}² -> {summary['out']}")
    for col in ("artifact", "precision", "size", "time", "parity vs PyTorch FP32"):
        t.add_column(col)
    for a in summary["artifacts"]:
        p = a.get("parity")
        if p:
            parity = f"max {p['max_abs']:.2e}, mean {p['mean_abs']:.2e}, IoU {p['mask_iou']:.5f} " + (
                "ok" if p["passed"] else "FAILED"
            )
        elif a.get("accuracy_vs_fp32"):
            r = a["accuracy_vs_fp32"]
            parity = f"vs FP32: max {r['max_abs']:.2e}, IoU {r['mask_iou']:.5f} " + ("ok" if r["passed"] else "MISSED")
        elif "builder" in a:
            parity = f"{a['builder']} for {', '.join(a['targets'])}"
        else:
            parity = "not checked"
        t.add_row(Path(a["artifact"]).name, a["precision"], _human(a["bytes"]), f"{a['seconds']:.1f} s", parity)
    Console(markup=False).print(t)


def export_command(
    ckpt: Path = typer.Option(..., help="Checkpoint from 'sam2ms train' (or the authors' SAM2MS weights)."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for model.onnx, model.fp16.onnx, engine.plan."),
    fp16: bool = typer.Option(False, "--fp16", help="Also write model.fp16.onnx and build the plan from it."),
    tile: int = typer.Option(1024, min=32, max=MAX_TILE, help="Tile size fixed in the graph (multiple of 32)."),
    input_format: str = typer.Option(
        "uint8",
        "--input",
        help="uint8: the graph takes RGB bytes N x T x T x 3 and "
        "normalises them itself (4x fewer bytes to the GPU, no host work); float32: "
        "N x 3 x T x T, normalised by the caller.",
    ),
    batch: str = typer.Option("1:4:8", help="Plan batch profile min:opt:max."),
    opset: int = typer.Option(18, min=17, max=99, help="ONNX opset (>= 17; the dynamo exporter needs >= 18)."),
    exporter: str = typer.Option("dynamo", help="dynamo | torchscript"),
    onnx_only: bool = typer.Option(False, "--onnx-only", help="Stop after the ONNX files."),
    builder: str = typer.Option("auto", help="auto | tensorrt | tensorrt_rtx"),
    target: str | None = typer.Option(
        None, help="tensorrt_rtx compute capabilities, e.g. sm86,sm89 (default: sm86,sm89,sm120; FP16 plans also sm75)."
    ),
    workspace: str = typer.Option("4G", help="Builder workspace limit."),
    timing_cache: Path | None = typer.Option(None, help="TensorRT timing cache file (read and updated)."),
    profiles: int = typer.Option(
        1,
        min=1,
        max=64,
        help="Identical optimisation profiles in the plan. One serves every runtime "
        "stream (TensorRT 10+ and TensorRT-RTX share profiles across contexts); "
        "more only for TensorRT 8.x-style runtimes.",
    ),
    int8: bool = typer.Option(False, "--int8", help="Also write model.int8.onnx (Q/DQ) and build the plan from it."),
    calib_data: Path | None = typer.Option(
        None,
        help="With --int8: folder of tiles or scenes, or a dataset "
        "folder, to calibrate on (images only: see --layout).",
    ),
    layout: str = typer.Option("auto", help="With --int8: how --calib-data is read (sam2ms calibrate --layout)."),
    calib_method: str = typer.Option("minmax", help="With --int8: minmax | entropy | percentile."),
    calib_batches: int = typer.Option(8, min=1, help="With --int8: calibration batches of 4 tiles."),
    calib_cache: Path | None = typer.Option(
        None, help="With --int8: calibration cache (JSON), reused when it matches."
    ),
    quantizer: str = typer.Option("ort", help="With --int8: ort | modelopt (NVIDIA ModelOpt, when installed)."),
    auto_exclude: bool = typer.Option(
        False,
        "--auto-exclude",
        help="With --int8: when the accuracy target is missed, keep the most sensitive layers in float until it holds.",
    ),
    reduce_range: bool = typer.Option(
        False,
        "--reduce-range",
        help="With --int8: 7-bit weights (keeps INT8 accurate on OpenVINO on CPUs without VNNI).",
    ),
    check: bool = typer.Option(True, "--check/--no-check", help="Parity with PyTorch on synthetic tiles."),
    check_tiles: int | None = typer.Option(
        None, min=1, help="Tiles for the parity check (default: enough for 262 144 pixels: 2 to 16)."
    ),
    openvino: bool = typer.Option(
        False,
        "--openvino",
        help="Also check each ONNX on OpenVINO (extra [openvino]): "
        "FP32, BF16 where this CPU has native BF16, and with --int8 OpenVINO's INT8 "
        "on the held-out tiles; recorded in the sidecars as the gates its backend reads.",
    ),
    deepness: bool = typer.Option(
        False,
        "--deepness",
        help="Also write model.deepness.onnx: the model as QGIS' Deepness plugin loads it "
        "(float32 input, sigmoid inside, its metadata), checked against model.onnx.",
    ),
    resolution: float | None = typer.Option(
        None,
        help="With --deepness: the imagery's resolution in cm/px the plugin will use (default: the "
        "training data's: DeepGlobe 50, SpaceNet 30, Massachusetts 100; else 50).",
    ),
    model: str | None = typer.Option(None, help="Model name (read from a sam2ms checkpoint)."),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable JSON summary on stdout."),
) -> None:
    """Export a checkpoint to ONNX (FP32, FP16, INT8) and a TensorRT plan, proving parity with PyTorch."""
    from rich.console import Console

    from sam2ms.deps import require

    for module in (
        "torch",
        "sam2",
        "onnx",
        "onnxslim",
        *(("onnxruntime",) if check or int8 else ()),
        *(("openvino",) if openvino else ()),
    ):
        require(module, "sam2ms export")
    from sam2ms.calib.pipeline import CalibrateOptions

    from .pipeline import ExportOptions, run_export

    console = Console(stderr=True, log_path=False, markup=False)
    calibration = (
        CalibrateOptions(
            onnx=output / "model.onnx",
            calib_data=calib_data,
            out=output,
            method=calib_method,
            batches=calib_batches,
            cache=calib_cache,
            auto_exclude=auto_exclude,
            quantizer=quantizer,
            reduce_range=reduce_range,
            layout=layout,
        )
        if int8
        else None
    )
    opts = ExportOptions(
        ckpt=ckpt,
        out=output,
        fp16=fp16,
        tile=tile,
        input_format=input_format,
        batch=batch,
        opset=opset,
        exporter=exporter,
        onnx_only=onnx_only,
        builder=builder,
        targets=target.split(",") if target else None,
        workspace=workspace,
        timing_cache=timing_cache,
        profiles=profiles,
        calibration=calibration,
        check=check,
        check_tiles=check_tiles,
        openvino=openvino,
        model=model,
        deepness=deepness,
        resolution=resolution,
    )
    try:
        summary = run_export(opts, log=lambda msg: console.log(msg))
    except CheckFailed as exc:
        if exc.summary:
            typer.echo(json.dumps(exc.summary, indent=2)) if as_json else _table(exc.summary)
        raise
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _table(summary)
    plan = next((a["artifact"] for a in summary["artifacts"] if a["artifact"].endswith(".plan")), None)
    console.print(
        f"next: sam2ms-infer {plan or output / 'model.onnx'} TILES_OR_SCENES -o MASKS (the tiled runtime; see README)"
    )
