"""Pipeline efficiency and memory of `sam2ms-infer` on the ONNX Runtime CPU backend.

    python benchmarks/pipeline_bench.py --onnx deploy/model.onnx --sizes 1024,2048,4096 --out /tmp/pipe

1. Efficiency: end-to-end tiles/s of the pipeline (decode, normalise where the model takes
   float32, batch, infer, blend, write)
   over engine-only tiles/s (the same lane running pre-made batches of the same size), in one
   process. Goal >= 0.95: the pipeline should cost next to nothing beyond the engine.
2. Memory: peak RSS of a fresh process running one scene of each size (GeoTIFF in, GeoTIFF out
   when rasterio is installed, else PNG), to show how memory grows with the scene.

Prints one JSON object; copy the figures, with device and date, to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

from sam2ms.bench.pipeline import write_tiled_tif
from sam2ms.data.synth import render_road_scene
from sam2ms.geo.rasters import rasterio_or_none
from sam2ms.preprocess import model_input
from sam2ms.runtime.backends import BackendOptions, open_model
from sam2ms.runtime.pipeline import InferOptions, run_inference

_CHILD = """
import json, sys
from pathlib import Path
from sam2ms.runtime.backends import BackendOptions, open_model
from sam2ms.runtime.pipeline import InferOptions, run_inference
model, src, out, fmt, threads = sys.argv[1:6]
engine = open_model(model, "auto", BackendOptions(threads=int(threads)))
s = run_inference(engine, InferOptions(Path(src), Path(out), fmt=fmt))
# VmHWM is this program's own peak; ru_maxrss would also count the parent's pages before exec.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"peak_rss_mib": hwm / 1024, "tiles": s["tiles"], "seconds": s["seconds"]}))
"""


def _write_scene(path: Path, size: int, tile: int) -> None:
    image, _ = render_road_scene(size, size, np.random.default_rng(size), scale=tile / 256)
    rasterio = rasterio_or_none()
    path.parent.mkdir(parents=True, exist_ok=True)
    if rasterio is not None:
        write_tiled_tif(path, image, compress=None)
    else:
        from PIL import Image

        Image.fromarray(image).save(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onnx", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--scene", type=int, default=2048, help="side of the efficiency scene")
    p.add_argument("--sizes", default="1024,2048,4096", help="scene sides for the memory curve")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    backend = open_model(args.onnx, "auto", BackendOptions(threads=args.threads))
    tile = backend.info.tile
    geo = rasterio_or_none() is not None
    suffix, fmt = (".tif", "tif") if geo else (".png", "png")
    result: dict = {
        "date": date.today().isoformat(),
        "device": f"CPU {platform.machine()}, {args.threads} threads",
        "model": str(args.onnx),
        "tile": tile,
        "batch": args.batch,
        "io": fmt,
        "input_format": backend.info.input_format,
    }

    src = args.out / "eff" / f"scene{suffix}"
    _write_scene(src, args.scene, tile)
    summary = run_inference(backend, InferOptions(src.parent, args.out / "eff_out", batch=args.batch, fmt=fmt))
    tiles = summary["tiles"]
    lane = backend.lanes(1)[0]
    windows = np.random.default_rng(0).integers(0, 256, (args.batch, tile, tile, 3), dtype=np.uint8)
    batch = model_input(windows, backend.info.input_format)
    lane.infer(batch)
    t0 = time.perf_counter()
    for _ in range(-(-tiles // args.batch)):
        lane.infer(batch)
    engine_tps = (-(-tiles // args.batch) * args.batch) / (time.perf_counter() - t0)
    result["efficiency"] = {
        "scene": args.scene,
        "tiles": tiles,
        "pipeline_tiles_per_s": summary["tiles_per_s"],
        "engine_tiles_per_s": engine_tps,
        "ratio": summary["tiles_per_s"] / engine_tps,
        "stage_seconds": summary["stage_seconds"],
        "input_bytes_per_tile": summary["input_bytes_per_tile"],
    }
    backend.close()

    memory = []
    for size in (int(s) for s in args.sizes.split(",")):
        scene = args.out / f"mem{size}" / f"scene{suffix}"
        _write_scene(scene, size, tile)
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(args.onnx),
                str(scene.parent),
                str(args.out / f"mem{size}_out"),
                fmt,
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        memory.append({"scene": size, "megapixels": size * size / 1e6, **json.loads(proc.stdout.splitlines()[-1])})
    result["memory"] = memory
    print(json.dumps(result))


if __name__ == "__main__":
    main()
