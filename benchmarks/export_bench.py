"""Export cost and CPU inference speed: what `sam2ms-export` takes and what ONNX Runtime gains.

    python benchmarks/export_bench.py --model sam2ms_hiera_t --tile 1024 --out /tmp/bench_t

For one model and tile: export time (ONNX FP32, FP16 conversion), ONNX and plan sizes, plan build
time (FP32 and FP16, tensorrt_rtx for --target, when installed), then ONNX Runtime CPU FP32
against PyTorch CPU eager FP32 throughput on the same synthetic tiles in one process,
alternating the two so that both see the same machine state. Weights are random (no pretrained
weights can be downloaded here): they change neither sizes nor speed. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from sam2ms.accuracy import parity_tiles
from sam2ms.export.pipeline import ExportOptions, run_export
from sam2ms.export.tensorrt_build import build_plan, parse_size
from sam2ms.models import create_model
from sam2ms.models.checkpoint import save_checkpoint
from sam2ms.preprocess import input_shape, normalize


def _throughput(run, tiles: np.ndarray, iterations: int) -> list[float]:
    times = []
    for i in range(iterations):
        t0 = time.perf_counter()
        run(tiles[i % len(tiles)][None])
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sam2ms_hiera_t")
    p.add_argument("--tile", type=int, default=1024)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--target", default="sm89")
    p.add_argument("--iterations", type=int, default=3, help="timed tiles per backend")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-plan", action="store_true")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ckpt = save_checkpoint(args.out / "random.pt", create_model(args.model), image_size=args.tile, epoch=0, step=0)
    result: dict = {
        "date": date.today().isoformat(),
        "device": f"CPU {platform.machine()}, {args.threads} threads",
        "torch": torch.__version__,
        "model": args.model,
        "tile": args.tile,
    }

    t0 = time.perf_counter()
    summary = run_export(
        ExportOptions(ckpt=ckpt, out=args.out, fp16=True, tile=args.tile, onnx_only=True, check_tiles=1),
        log=lambda m: print(m, flush=True),
    )
    result["export_total_s"] = round(time.perf_counter() - t0, 1)
    result["onnx"] = [
        {k: a[k] for k in ("precision", "bytes", "seconds")}
        | {"max_abs": a["parity"]["max_abs"], "mask_iou": a["parity"]["mask_iou"]}
        for a in summary["artifacts"]
    ]
    if not args.no_plan:
        import importlib.util

        if importlib.util.find_spec("tensorrt_rtx") or importlib.util.find_spec("tensorrt"):
            plans = []
            for precision, onnx_file in (("fp32", "model.onnx"), ("fp16", "model.fp16.onnx")):
                facts = build_plan(
                    args.out / onnx_file,
                    args.out / f"engine.{precision}.plan",
                    builder="auto",
                    shapes=[input_shape("uint8", args.tile, n) for n in (1, 1, 2)],
                    workspace=parse_size("4G"),
                    targets=[args.target],
                    precision=precision,
                )
                plans.append(
                    {
                        "precision": precision,
                        "bytes": (args.out / f"engine.{precision}.plan").stat().st_size,
                        "build_s": facts["build_seconds"],
                        "builder": facts["builder"],
                        "builder_version": facts["builder_version"],
                        "targets": facts["targets"],
                    }
                )
            result["plans"] = plans

    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    session = ort.InferenceSession(str(args.out / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    model = create_model(None, checkpoint=ckpt).eval()
    tiles = parity_tiles(args.tile, 2, seed=1)

    def ort_run(x: np.ndarray) -> None:
        session.run(None, {"image": x})

    def torch_run(x: np.ndarray) -> None:
        with torch.no_grad():
            model(torch.from_numpy(normalize(x)))  # PyTorch with the host's normalisation, ORT with the graph's

    ort_run(tiles[:1])
    torch_run(tiles[:1])  # warm-up
    ort_times, torch_times = [], []
    for _ in range(args.iterations):  # alternate: both backends see the same machine state
        ort_times += _throughput(ort_run, tiles, 1)
        torch_times += _throughput(torch_run, tiles, 1)
    result["ort_cpu_fp32_s_per_tile"] = float(np.median(ort_times))
    result["torch_cpu_fp32_s_per_tile"] = float(np.median(torch_times))
    result["ort_speedup_vs_torch"] = result["torch_cpu_fp32_s_per_tile"] / result["ort_cpu_fp32_s_per_tile"]
    result["onnxruntime"] = ort.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
