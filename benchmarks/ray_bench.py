"""The Ray engine's overhead on one machine: ``sam2ms-infer --ray local`` against the
single-process runtime on the same scenes, model and settings.

    python benchmarks/ray_bench.py --model demo_run/export/model.onnx [--scenes 8] [--size 1024] [--block 8192]

Writes synthetic road scenes (PNG) to a scratch folder, runs both (the single-process run first,
then Ray on a fresh local cluster, whose start is counted), checks that the masks are the same
bytes, and prints one JSON object: seconds, tiles/s, Ray's time to its first committed block and
the ratio of the two rates.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from PIL import Image

from sam2ms.data.synth import render_road_scene
from sam2ms.runtime.backends import open_model
from sam2ms.runtime.pipeline import InferOptions, run_inference
from sam2ms.runtime.ray_pipeline import RayOptions, run_inference_ray


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--scenes", type=int, default=8)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--block", type=int, default=8192)
    p.add_argument("--batch", type=int, default=4)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ray_bench_"))
    for i in range(args.scenes):
        img, _ = render_road_scene(args.size, args.size, np.random.default_rng(i))
        (work / "in").mkdir(exist_ok=True)
        Image.fromarray(img).save(work / "in" / f"s{i}.png")
    with open_model(args.model) as engine:
        t0 = time.perf_counter()
        single = run_inference(engine, InferOptions(work / "in", work / "single", batch=args.batch))
        single_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ray = run_inference_ray(
            args.model,
            InferOptions(work / "in", work / "ray", batch=args.batch),
            RayOptions(block=args.block),
            engine.info,
        )
        ray_s = time.perf_counter() - t0
    same = all((work / "single" / f.name).read_bytes() == f.read_bytes() for f in (work / "ray").glob("*.png"))
    cores = len(os.sched_getaffinity(0))
    print(
        json.dumps(
            {
                "date": date.today().isoformat(),
                "device": f"CPU {platform.machine()}, {cores} cores",
                "model": str(args.model),
                "scenes": args.scenes,
                "size": args.size,
                "block": args.block,
                "single": {
                    "seconds": round(single_s, 2),
                    "tiles": single["tiles"],
                    "tiles_per_s": round(single["tiles"] / single_s, 2),
                },
                "ray": {
                    "seconds": round(ray_s, 2),
                    "tiles": ray["tiles"],
                    "tiles_per_s": round(ray["tiles"] / ray_s, 2),
                    "first_block_s": ray["ray"]["first_block_s"],
                    "stage_seconds": ray["stage_seconds"],
                },
                "ray_over_single": round((ray["tiles"] / ray_s) / (single["tiles"] / single_s), 3),
                "same_masks": same,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
