"""Real-raster costs of `sam2ms-infer`: empty-window skipping, COG writing memory, overview time.

    python benchmarks/nodata_bench.py --out /tmp/nodata [--onnx model.onnx] [--size 8192]

1. A SIZE² 4-band uint16 GeoTIFF (tiled, deflate) whose nodata (0) covers about half of it, run
   twice in fresh processes with the same pixels: nodata declared (empty windows skipped, outputs
   masked) and not declared (every window inferred). Reported: wall time, scene windows/s,
   inferred tiles/s, empty windows.
2. Peak RSS (VmHWM) of a fresh process writing COG outputs (mask + probabilities) for scenes of
   growing size: the goal is flat, as with the striped writer before.
3. Seconds spent building the COGs (overviews from the staging file + COG layout).

Without --onnx an untrained sam2ms_nano is exported at --tile (speed does not depend on weights).
Prints one JSON object; copy the figures, with device and date, to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np

from sam2ms.data.synth import render_road_scene

_CHILD = """
import json, sys
from pathlib import Path
from sam2ms.geo.radiometry import Radiometry
from sam2ms.runtime.backends import BackendOptions, open_model
from sam2ms.runtime.pipeline import InferOptions, run_inference
model, src, out, threads = sys.argv[1:5]
opts = InferOptions(Path(src), Path(out), fmt="tif", probabilities=True,
                    radiometry=Radiometry(stretch="fixed", low=(0.0,), high=(4095.0,)))
s = run_inference(open_model(model, "auto", BackendOptions(threads=int(threads))), opts)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"peak_rss_mib": hwm / 1024, **{k: s[k] for k in ("tiles", "empty_windows", "seconds",
                  "tiles_per_s", "stage_seconds", "failed")}}))
"""


def write_scene(path: Path, size: int, nodata: bool, seed: int = 0) -> float:
    """The bench scene (same pixels with or without nodata declared); returns its nodata fraction.
    Written by 1024-row strips from a tiled 2048² synthetic scene, so the writer stays small.
    """
    import rasterio

    base, _ = render_road_scene(2048, 2048, np.random.default_rng(seed), scale=2.0)
    raw = base.astype(np.uint16) * 16 + 8  # 12-bit
    bands = np.stack([raw[..., 2], raw[..., 1], raw[..., 0], raw[..., 1] // 2 + 7])
    path.parent.mkdir(parents=True, exist_ok=True)
    empty = 0
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=size,
        width=size,
        count=4,
        dtype="uint16",
        nodata=0 if nodata else None,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
        crs="EPSG:32633",
        transform=rasterio.transform.from_origin(500_000, 4_000_000, 0.5, 0.5),
    ) as ds:
        for y in range(0, size, 1024):
            rows = np.arange(y, min(y + 1024, size))
            strip = np.tile(bands[:, rows % 2048], (1, 1, -(-size // 2048)))[:, :, :size]
            # nodata right of a wavy diagonal: a half-empty orthomosaic edge
            edge = size * (0.5 + 0.1 * np.sin(rows / size * 6.28))[:, None] + (rows[:, None] - size / 2) * 0.3
            outside = np.arange(size)[None, :] > edge
            strip[:, outside] = 0
            empty += int(outside.sum())
            ds.write(strip, window=rasterio.windows.Window(0, y, size, len(rows)))
    return empty / size / size


def _export_nano(out: Path, tile: int) -> Path:
    import torch

    from sam2ms.export.pipeline import ExportOptions, run_export
    from sam2ms.models import create_model
    from sam2ms.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    ckpt = save_checkpoint(out / "nano.pt", create_model("sam2ms_nano"), image_size=tile, epoch=0, step=0)
    run_export(ExportOptions(ckpt=ckpt, out=out / "nano", tile=tile, onnx_only=True, check_tiles=1))
    return out / "nano" / "model.onnx"


def _run(model: Path, scene: Path, out: Path, threads: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(model), str(scene), str(out), str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--onnx", type=Path)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--size", type=int, default=8192)
    p.add_argument("--memory-sizes", default="2048,4096,8192")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    model = args.onnx or _export_nano(args.out, args.tile)
    result: dict = {
        "date": date.today().isoformat(),
        "device": f"CPU {platform.processor() or platform.machine()}, {args.threads} threads",
        "model": str(model),
        "size": args.size,
    }
    runs = {}
    for declared in (True, False):
        scene = args.out / f"scene_{'nodata' if declared else 'plain'}.tif"
        fraction = write_scene(scene, args.size, declared)
        runs["skipping" if declared else "without_skipping"] = r = _run(
            model, scene, args.out / scene.stem, args.threads
        )
        r["windows_per_s"] = (r["tiles"] + r["empty_windows"]) / r["seconds"]
        result["nodata_fraction"] = round(fraction, 3)
    result["runs"] = runs
    result["speedup"] = runs["without_skipping"]["seconds"] / runs["skipping"]["seconds"]
    memory = []
    for size in (int(s) for s in args.memory_sizes.split(",")):
        scene = args.out / f"mem{size}.tif"
        if size == args.size:
            scene = args.out / "scene_nodata.tif"
        else:
            write_scene(scene, size, True)
        r = _run(model, scene, args.out / f"mem{size}_out", args.threads)
        memory.append(
            {
                "scene": size,
                "input_mib_uncompressed": size * size * 8 / 2**20,
                "peak_rss_mib": round(r["peak_rss_mib"], 1),
                "cog_seconds": r["stage_seconds"]["overviews"],
                "seconds": r["seconds"],
            }
        )
    result["memory"] = memory
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
