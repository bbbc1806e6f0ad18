"""What the tiled pipeline delivers around an engine: ``sam2ms bench --pipeline``.

Every row is one ``run_inference`` over the same synthetic scenes, in its own process (so that each
row's peak RSS is its own, and so that it can be pinned to fewer cores), with an engine of known
speed (:mod:`sam2ms.runtime.backends.synthetic_backend`) or a real model:

* **host capacity**: a free engine (0 ms per tile) on 1 core and on all cores: what the host side
  (decode, normalise, blend, encode, write) can deliver at most, and how it scales with cores;
* **efficiency**: engines at given fractions of that capacity (``--engine-load``) or given speeds
  (``--engine-ms``): pipeline tiles/s over the engine's own, which is what a user keeps of a GPU;
* **the GIL**: the same engine holding the GIL for a fraction of each batch
  (``--engine-gil-fraction``), as PyTorch's launch-bound lanes do;
* **one large scene** (``--single``, 6144² by default): the same engines over a single scene, where
  nothing overlaps its decode but the decode itself (a PNG streams: :mod:`sam2ms.geo.png_rows`);
* a model file: the pipeline against that model's lanes, measured alone in the same process.

Each row has per-stage seconds (summed over threads) and each thread role's busy fraction of the
wall time (the scheduler thread's included): the stage whose threads are busy near 1 is the limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.errors import UsageError

IO_FORMATS = ("png", "tif")


@dataclass(frozen=True)
class PipelineBenchOptions:
    """One ``sam2ms bench --pipeline`` run (see the module's docstring)."""

    work: Path
    model: Path | None = None  # None: the synthetic engine
    scenes: int = 8
    size: int = 4096
    tile: int = 1024
    io: str = "png"
    batch: int = 4
    streams: int = 1
    workers: int = 2
    loads: tuple[float, ...] = (0.5, 0.9)
    engine_ms: tuple[float, ...] = ()
    gil_fraction: float = 0.0
    single: int = 6144  # side of the one-scene rows (0: none)
    cores: tuple[int, ...] = field(default_factory=lambda: _core_counts())

    def validate(self) -> PipelineBenchOptions:
        """This object, once its values are in range; a UsageError naming the flag otherwise."""
        if self.io not in IO_FORMATS:
            raise UsageError(f"--io {self.io}: use one of {', '.join(IO_FORMATS)}")
        if self.io == "tif":
            from sam2ms.deps import require

            require("rasterio", "--io tif")
        if any(not 0 < load <= 2 for load in self.loads):
            raise UsageError(
                f"--engine-load {','.join(map(str, self.loads))}: fractions of the host capacity in (0, 2]"
            )
        if any(ms <= 0 for ms in self.engine_ms):
            raise UsageError("--engine-ms: milliseconds per tile, above 0 (a free engine is always measured)")
        if not 0 <= self.gil_fraction <= 1:
            raise UsageError(f"--engine-gil-fraction {self.gil_fraction}: must be in [0, 1]")
        available = _usable_cores()
        if any(not 1 <= c <= available for c in self.cores):
            raise UsageError(f"--cores {','.join(map(str, self.cores))}: this machine lets us use 1..{available}")
        if self.model is not None and not self.model.is_file():
            raise UsageError(f"{self.model}: model file not found")
        return self


def _usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _core_counts() -> tuple[int, ...]:
    n = _usable_cores()
    return (1, n) if n > 1 else (1,)


def write_scenes(opts: PipelineBenchOptions, count: int | None = None, size: int | None = None) -> Path:
    """The benchmark's scenes (drawn roads, seeded; reused when already there): PNG, or tiled
    GeoTIFF (256² blocks, deflate) with ``io="tif"``; ``count`` x ``size``² (default: the options').
    """
    from sam2ms.data.synth import render_road_scene

    count, size = count or opts.scenes, size or opts.size
    folder = opts.work / f"scenes_{count}x{size}_{opts.io}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = folder / f"scene_{i:02d}.{opts.io}"
        if path.is_file():
            continue
        image, _ = render_road_scene(size, size, np.random.default_rng(i), scale=opts.tile / 256)
        temp = path.with_name(".part-" + path.name)
        if opts.io == "png":
            from PIL import Image

            Image.fromarray(image).save(temp, format="PNG")
        else:
            write_tiled_tif(temp, image)
        temp.replace(path)
    return folder


def write_tiled_tif(path: Path, image: np.ndarray, compress: str | None = "deflate") -> None:
    """``image`` (uint8 H x W x 3) as a GeoTIFF of 256² blocks: the scenes every pipeline
    benchmark reads (what a satellite provider's COG looks like to a reader). Needs rasterio.
    """
    import rasterio

    options = {"compress": compress} if compress else {}
    height, width = image.shape[:2]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=height,
        width=width,
        count=3,
        dtype="uint8",
        tiled=True,
        blockxsize=256,
        blockysize=256,
        **options,
    ) as ds:
        ds.write(np.moveaxis(image, -1, 0))


#: One row, in a fresh process: pinned to ``cores``, the engine built, the pipeline run, VmHWM read.
_CHILD = r"""
import json, os, shutil, sys, time
import numpy as np
from pathlib import Path
args = json.loads(sys.argv[1])
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args["cores"]])
from sam2ms.runtime.pipeline import InferOptions, run_inference
from sam2ms.preprocess import model_input
if args["model"]:
    from sam2ms.runtime.backends import BackendOptions, open_model
    backend = open_model(args["model"], "auto", BackendOptions(threads=args["cores"]))
else:
    from sam2ms.runtime.backends.synthetic_backend import SyntheticBackend
    backend = SyntheticBackend(args["tile"], args["engine_ms"], args["gil_fraction"])
out = Path(args["out"])
shutil.rmtree(out, ignore_errors=True)
s = run_inference(backend, InferOptions(Path(args["scenes"]), out, batch=args["batch"], streams=args["streams"],
                                        workers=args["workers"], fmt=args["io"]))
row = {k: s[k] for k in ("tiles", "seconds", "tiles_per_s", "megapixels_per_s", "stage_seconds", "thread_busy",
                         "failed")}
if args["model"]:  # the same lanes alone, on as many batches as the pipeline ran
    from concurrent.futures import ThreadPoolExecutor
    lanes, info = backend.lanes(args["streams"]), backend.info
    windows = np.random.default_rng(0).integers(0, 256, (args["batch"], info.tile, info.tile, 3), dtype=np.uint8)
    batch = model_input(windows, info.input_format)
    per_lane = max(1, -(-s["tiles"] // (args["batch"] * len(lanes))))
    for lane in lanes:
        lane.infer(batch)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(lanes)) as pool:
        list(pool.map(lambda lane: [lane.infer(batch) for _ in range(per_lane)], lanes))
    row["engine_tiles_per_s"] = per_lane * len(lanes) * args["batch"] / (time.perf_counter() - t0)
shutil.rmtree(out, ignore_errors=True)
row["peak_rss_mib"] = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps(row))
"""


def _row(
    opts: PipelineBenchOptions,
    scenes: Path,
    *,
    cores: int,
    engine_ms: float = 0.0,
    gil_fraction: float = 0.0,
    model: Path | None = None,
) -> dict[str, Any]:
    args = {
        "cores": cores,
        "engine_ms": engine_ms,
        "gil_fraction": gil_fraction,
        "tile": opts.tile,
        "model": str(model) if model else None,
        "scenes": str(scenes),
        "out": str(opts.work / "out"),
        "batch": opts.batch,
        "streams": opts.streams,
        "workers": opts.workers,
        "io": opts.io,
    }
    proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pipeline row {args} failed: {proc.stderr.strip()[-2000:]}")
    row: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(cores=cores, engine_ms=engine_ms, gil_fraction=gil_fraction)
    if model is None and engine_ms > 0:
        row["engine_tiles_per_s"] = opts.streams * 1000.0 / engine_ms
    if row.get("engine_tiles_per_s"):
        row["efficiency"] = row["tiles_per_s"] / row["engine_tiles_per_s"]
    return row


def run_pipeline_bench(opts: PipelineBenchOptions, log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """Every row of the module's docstring, as one JSON report."""
    from .host import host, versions

    opts = opts.validate()
    log(f"writing {opts.scenes} synthetic {opts.size}² {opts.io.upper()} scenes (reused when there)")
    scenes = write_scenes(opts)
    rows: dict[str, Any] = {}
    for cores in opts.cores:
        log(f"host capacity: a free engine, {cores} core(s)")
        rows[f"free, {cores} core(s)"] = _row(opts, scenes, cores=cores)
    most = max(opts.cores)
    capacity = rows[f"free, {most} core(s)"]["tiles_per_s"]
    speeds = [(f"{load:g} of capacity", opts.streams * 1000.0 / (load * capacity)) for load in opts.loads]
    speeds += [(f"{ms:g} ms/tile", ms) for ms in opts.engine_ms]
    for label, ms in speeds:
        log(f"engine at {label} ({ms:.1f} ms per tile per lane), {most} core(s)")
        rows[f"engine {label}"] = _row(opts, scenes, cores=most, engine_ms=ms)
        if opts.gil_fraction:
            log(f"  the same holding the GIL {opts.gil_fraction:.0%} of each batch")
            rows[f"engine {label}, GIL {opts.gil_fraction:.0%}"] = _row(
                opts, scenes, cores=most, engine_ms=ms, gil_fraction=opts.gil_fraction
            )
    if opts.single:
        log(f"writing one synthetic {opts.single}² {opts.io.upper()} scene (reused when there)")
        one = write_scenes(opts, 1, opts.single)
        for label, ms in speeds:
            log(f"one {opts.single}² scene, engine at {label}")
            rows[f"one {opts.single}² scene, engine {label}"] = _row(opts, one, cores=most, engine_ms=ms)
    if opts.model is not None:
        log(f"{opts.model.name}: the pipeline against its own lanes, {most} core(s)")
        rows[opts.model.name] = _row(opts, scenes, cores=most, model=opts.model)
        if opts.single:
            rows[f"{opts.model.name}, one {opts.single}² scene"] = _row(opts, one, cores=most, model=opts.model)
    first = rows[f"free, {min(opts.cores)} core(s)"]["tiles_per_s"]
    return {
        "date": date.today().isoformat(),
        "host": host(most),
        "versions": versions(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
        "host_capacity": {
            "tiles_per_s": capacity,
            "megapixels_per_s": rows[f"free, {most} core(s)"]["megapixels_per_s"],
            "core_scaling": capacity / first if first else None,
        },
        "rows": rows,
    }


def pipeline_markdown(report: dict[str, Any]) -> str:
    """The report as a table (the figures to copy into benchmarks/RESULTS.md, with host and date)."""
    s, cap = report["settings"], report["host_capacity"]
    lines = [
        f"Pipeline, {s['scenes']} × {s['size']}² {s['io'].upper()} scenes, {s['tile']}² tiles, batch "
        f"{s['batch']}, {s['streams']} lane(s), {s['workers']} decoders; {report['host']['cpu']}, "
        f"{report['date']}. Host capacity {cap['tiles_per_s']:.1f} tiles/s ({cap['megapixels_per_s']:.1f} MP/s)"
        + (f", {cap['core_scaling']:.2f}× from 1 core to {max(s['cores'])}" if cap["core_scaling"] else "")
        + ".",
        "",
        "| row | cores | tiles/s | engine tiles/s | pipeline / engine | scheduler busy | busiest role | "
        "peak RSS MiB | decode / normalise / blend / encode / write / overviews / graph s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, r in report["rows"].items():
        busy = r["thread_busy"]
        role, top = max(
            ((k, v["max"]) for k, v in busy.items() if k != "scheduler"), key=lambda kv: kv[1], default=("—", 0.0)
        )
        st = r["stage_seconds"]
        stages = " / ".join(
            f"{st.get(k, 0.0):.2f}" for k in ("decode", "normalise", "blend", "encode", "write", "overviews", "graph")
        )
        engine = f"{r['engine_tiles_per_s']:.1f}" if r.get("engine_tiles_per_s") else "free"
        eff = f"{r['efficiency']:.3f}" if r.get("efficiency") else "—"
        lines.append(
            f"| {label} | {r['cores']} | {r['tiles_per_s']:.1f} | {engine} | {eff} | "
            f"{busy.get('scheduler', {}).get('max', 0.0):.2f} | {role} {top:.2f} | {r['peak_rss_mib']:.0f} | "
            f"{stages} |"
        )
    return "\n".join(lines) + "\n"
