"""The CPU suite of ``sam2ms bench``: PyTorch eager vs ONNX Runtime FP32 vs INT8, in one run per model.

    python benchmarks/cpu_suite.py --out /tmp/suite [--nano-ckpt demo_run/run/best.pt]

For ``sam2ms_nano`` at 256² (the demo's trained checkpoint when given, else random weights) and
``sam2ms_hiera_t`` at 1024² (random weights: none can be downloaded here), export the FP32 ONNX,
calibrate INT8 on a synthetic scene (minmax; --auto-exclude for a trained checkpoint), then run
``sam2ms bench`` on both artifacts with the PyTorch eager FP32 reference. Writes one
``bench-<model>.json/.md/.png`` per model under --out and prints the markdown tables.
Random weights change neither sizes nor speed; their INT8 accuracy figures mean nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from sam2ms.bench.report import save_report
from sam2ms.bench.runner import BenchOptions, run_bench
from sam2ms.calib.pipeline import CalibrateOptions, run_calibrate
from sam2ms.data.synth import render_road_scene
from sam2ms.errors import CheckFailed
from sam2ms.export.pipeline import ExportOptions, run_export
from sam2ms.fileio import save_png
from sam2ms.models import create_model
from sam2ms.models.checkpoint import save_checkpoint

SUITE = (("sam2ms_nano", 256, [1, 4], 20), ("sam2ms_hiera_t", 1024, [1], 3))  # model, tile, batches, iterations


def _prepare(name: str, tile: int, ckpt: Path | None, out: Path) -> list[Path]:
    """FP32 ONNX and INT8 ONNX for one model (INT8 kept even when it misses its target)."""
    if ckpt is None:
        torch.manual_seed(0)
        ckpt = save_checkpoint(out / "random.pt", create_model(name), image_size=tile, epoch=0, step=0)
    run_export(ExportOptions(ckpt=ckpt, out=out, tile=tile, onnx_only=True, check_tiles=1))
    scene = out / "calib"
    image, _ = render_road_scene(2 * tile, 4 * tile, np.random.default_rng([tile, 5]), scale=tile / 256)
    save_png(scene / "scene.png", image)
    try:  # 4 calibration tiles + 4 held out
        run_calibrate(CalibrateOptions(onnx=out / "model.onnx", calib_data=scene, out=out, batches=1, holdout=4,
                                       batch_size=4, auto_exclude=ckpt.name != "random.pt", progress=False))
    except CheckFailed:
        pass
    return [out / "model.onnx", out / "model.int8.onnx"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--nano-ckpt", type=Path, help="a trained sam2ms_nano checkpoint (e.g. the demo's best.pt)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", help="one model name of the suite")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for name, tile, batches, iterations in SUITE:
        if args.only and name != args.only:
            continue
        folder = args.out / name
        models = _prepare(name, tile, args.nano_ckpt if name == "sam2ms_nano" else None, folder)
        report = run_bench(BenchOptions(models=models, batches=batches, iterations=iterations, warmup=1,
                                        reference=next(folder.glob("*.pt"), None) or args.nano_ckpt,
                                        threads=args.threads, accuracy_tiles=4))
        table = save_report(report, stem=args.out / f"bench-{name}")
        print(f"## {name} @ {tile}²\n\n{table}")


if __name__ == "__main__":
    main()
