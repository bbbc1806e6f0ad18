"""The CPU suite of ``sam2ms bench``: PyTorch (FP32, bf16 autocast where native, compiled) vs ONNX
Runtime and OpenVINO (FP32, BF16 where native, INT8), in one run per model and tile.

    python benchmarks/cpu_suite.py --out /tmp/suite [--nano-ckpt demo_run/run/best.pt] [--isolation]
        [--only sam2ms_hiera_t --tile 512 --batch 1 --no-int8 --torch fp32,bf16]   # one entry, lean

For ``sam2ms_nano`` at 256² (the demo's trained checkpoint when given, else random weights) and
``sam2ms_hiera_t`` at 512² and 1024² (random weights: none can be downloaded here), export the
FP32 ONNX, calibrate INT8 on a synthetic scene (minmax; --auto-exclude for a trained checkpoint),
then run ``sam2ms bench`` on both artifacts, every installed CPU backend, each subject in its own
process. Writes one ``bench-<model>-<tile>.json/.md/.png`` per entry under --out and prints the
markdown tables. Random weights change neither sizes nor speed; their INT8 accuracy means nothing.

``--isolation``: first, the proof that subjects must not share a process: ONNX Runtime FP32 on
``sam2ms_nano`` timed in its own process and right after OpenVINO in the same process.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam2ms.bench.options import BenchOptions
from sam2ms.bench.report import save_report
from sam2ms.bench.runner import run_bench
from sam2ms.calib.pipeline import CalibrateOptions, run_calibrate
from sam2ms.data.synth import render_road_scene
from sam2ms.errors import CheckFailed
from sam2ms.export.pipeline import ExportOptions, run_export
from sam2ms.fileio import save_png
from sam2ms.models import create_model
from sam2ms.models.checkpoint import save_checkpoint

SUITE = (
    ("sam2ms_nano", 256, [1, 4], 20),
    ("sam2ms_hiera_t", 512, [1, 4], 3),
    ("sam2ms_hiera_t", 1024, [1], 2),
)  # model, tile, batches, iterations


def _prepare(name: str, tile: int, ckpt: Path | None, out: Path, int8: bool = True) -> list[Path]:
    """FP32 ONNX and (``int8``) INT8 ONNX for one model (INT8 kept even when it misses its target)."""
    if ckpt is None:
        torch.manual_seed(0)
        ckpt = save_checkpoint(out / "random.pt", create_model(name), image_size=tile, epoch=0, step=0)
    run_export(ExportOptions(ckpt=ckpt, out=out, tile=tile, onnx_only=True, check_tiles=1))
    if not int8:
        return [out / "model.onnx"]
    scene = out / "calib"
    image, _ = render_road_scene(2 * tile, 4 * tile, np.random.default_rng([tile, 5]), scale=tile / 256)
    save_png(scene / "scene.png", image)
    with contextlib.suppress(CheckFailed):  # 4 calibration tiles + 4 held out; a missed target still writes it
        run_calibrate(
            CalibrateOptions(
                onnx=out / "model.onnx",
                calib_data=scene,
                out=out,
                batches=1,
                holdout=4,
                batch_size=4,
                auto_exclude=ckpt.name != "random.pt",
                progress=False,
            )
        )
    return [out / "model.onnx", out / "model.int8.onnx"]


def isolation(models: list[Path], reference: Path | None, threads: int) -> str:
    """ONNX Runtime FP32 (batch 4) alone in its process, and after OpenVINO in one process."""
    common: dict[str, Any] = {
        "models": models[:1],
        "batches": [4],
        "iterations": 20,
        "warmup": 2,
        "reference": reference,
        "threads": threads,
        "accuracy_tiles": 1,
        "openvino_precisions": ["fp32"],
    }
    lines = ["| ONNX Runtime FP32, nano 256², batch 4 | p50 ms | tiles/s |", "| --- | --- | --- |"]
    runs: list[tuple[str, dict[str, Any]]] = [
        ("own process", {"backend": "onnxruntime", "isolate": True}),
        ("after OpenVINO, same process", {"backend": "openvino,onnxruntime", "isolate": False}),
    ]
    for label, options in runs:
        row = next(r for r in run_bench(BenchOptions(**common, **options))["rows"] if r["backend"] == "onnxruntime")
        lines.append(f"| {label} | {row['latency_ms']['p50']:.1f} | {row['throughput']['tiles_per_s']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--nano-ckpt", type=Path, help="a trained sam2ms_nano checkpoint (e.g. the demo's best.pt)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", help="one model name of the suite")
    p.add_argument("--tile", type=int, help="only the suite's entries at this tile")
    p.add_argument("--batch", help="batch sizes instead of the suite's, e.g. 1 or 1,4")
    p.add_argument("--no-int8", action="store_true", help="FP32 ONNX only (no calibration, no INT8 rows)")
    p.add_argument("--torch", default="auto", help="PyTorch variants (sam2ms bench --torch)")
    p.add_argument("--isolation", action="store_true", help="first time ONNX Runtime alone and after OpenVINO")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for name, tile, batches, iterations in SUITE:
        if (args.only and name != args.only) or (args.tile and tile != args.tile):
            continue
        folder = args.out / f"{name}-{tile}"
        models = _prepare(name, tile, args.nano_ckpt if name == "sam2ms_nano" else None, folder, not args.no_int8)
        batches = [int(b) for b in args.batch.split(",")] if args.batch else batches
        reference = next(folder.glob("*.pt"), None) or args.nano_ckpt
        if args.isolation and name == "sam2ms_nano":
            print(f"## Isolation\n\n{isolation(models, reference, args.threads)}", flush=True)
        # 3 warm-ups: OpenVINO needs more than one inference at a new (dynamic) batch size
        report = run_bench(
            BenchOptions(
                models=models,
                batches=batches,
                iterations=iterations,
                warmup=3,
                reference=reference,
                threads=args.threads,
                accuracy_tiles=4,
                torch_variants=args.torch.split(","),
            ),
            log=lambda m: print(m, flush=True),
        )
        table = save_report(report, stem=args.out / f"bench-{name}-{tile}")
        print(f"## {name} @ {tile}²\n\n{table}", flush=True)


if __name__ == "__main__":
    main()
