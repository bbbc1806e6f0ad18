"""Everything a session with a lent GPU should run, in one go: ``make gpu-check``.

    python benchmarks/gpu_check.py --out DIR [--budget-s 540] [--quick] [--only tests|streams|cpu|suite|train]

Steps, each timed and recorded even when it fails or is skipped:

1. install what the GPU machine lacks from ``.whl/`` (``make gpu-wheels`` fills it here: the sam2
   sdist and its pure-Python dependencies, onnxslim) and this package (editable, no dependencies);
2. the device's facts (CUDA's name, driver, torch);
3. ``pytest -m gpu`` (cuda-python layer, CUDA graphs, PyTorch CUDA-stream lanes eager and
   captured, TensorRT where importable and able to target this GPU);
4. the PyTorch engine of SAM2MS-T and -L at 1024² (``benchmarks/gpu_suite.py``: eager FP32, BF16
   eager and replayed from CUDA graphs (also channels-last), ``torch.compile`` reduce-overhead;
   latency, split, memory, MFU);
5. the stream pipeline: the PyTorch backend's K CUDA-stream lanes (K = 1, 2, 4; BF16 from CUDA graphs) through
   ``sam2ms bench`` (tiles/s per K, H2D/compute/D2H split) and through ``sam2ms infer`` over eight
   4096² scenes as PNG and as tiled GeoTIFF and over one 6144² PNG (pipeline tiles/s against the
   lanes' own, and the scheduler thread's busy fraction: issue 26);
6. the host CPU's BF16 rows (issue 16), where it has native BF16 (AVX-512 BF16 or AMX; the
   machines this project is built on have none): ``benchmarks/cpu_suite.py`` for Hiera-T at 512²,
   batch 1, 2 threads, CUDA hidden — PyTorch FP32 and bf16 autocast, ONNX Runtime FP32, OpenVINO
   FP32 and BF16 (``make gpu-wheels`` carries the OpenVINO wheel);
7. training throughput of SAM2MS-L at 1024², batch 2, BF16 (``benchmarks/train_speed.py``; run
   before the reference suite, which keeps the tables of the models it finished in the budget).

It writes ``DIR/gpu_check.json`` and ``DIR/gpu_check.md`` (rows to paste into
benchmarks/RESULTS.md, with device and date) and ends by listing what it could not run and why.
Steps that would overrun ``--budget-s`` are skipped, and say so. ``--quick`` uses the nano model at
small tiles (a smoke test of this script; also what runs on a CPU-only machine).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class Check:
    """Runs steps within a time budget and records what each did."""

    def __init__(self, out: Path, budget_s: float) -> None:
        self.out, self.budget_s, self.started = out, budget_s, time.perf_counter()
        self.steps: list[dict[str, Any]] = []

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.started)

    def step(self, name: str, needs_s: float, run: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        if self.left() < needs_s:
            self.steps.append(
                {
                    "step": name,
                    "status": "skipped",
                    "why": f"needs ~{needs_s:.0f} s, {max(self.left(), 0):.0f} s of the budget left",
                }
            )
            return None
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            result = run()
            status = result.pop("status", "ok")
        except Exception as exc:  # noqa: BLE001 - every step reports, none stops the others
            result, status = {"why": f"{type(exc).__name__}: {exc}"[:2000]}, "failed"
        self.steps.append({"step": name, "status": status, "seconds": round(time.perf_counter() - t0, 1), **result})
        return result


def _run(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    print("$ " + " ".join(cmd), flush=True)
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )
    sys.stdout.write(proc.stdout[-6000:])
    sys.stderr.write(proc.stderr[-3000:])
    return proc


def install() -> dict[str, Any]:
    wheels = sorted((ROOT / ".whl").glob("*.whl")) if (ROOT / ".whl").is_dir() else []
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation"]
    if wheels:
        proc = _run([*pip, *map(str, wheels)], 600)
        if proc.returncode:
            return {"status": "failed", "why": proc.stderr[-1500:]}
    proc = _run([*pip, "-e", str(ROOT)], 600)
    if proc.returncode:  # an older setuptools there cannot install editable with package-dir mappings
        proc = _run([*pip, str(ROOT)], 600)
        if proc.returncode:
            return {"status": "failed", "why": proc.stderr[-1500:]}
    # The editable install's import hook sits in a .pth file, which this already-running
    # interpreter read before the install: read the site directories again.
    for site_dir in site.getsitepackages():
        site.addsitedir(site_dir)
    importlib.invalidate_caches()
    return {"carried": [w.name for w in wheels]}


def device_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {"date": date.today().isoformat(), "python": sys.version.split()[0]}
    try:
        import torch

        facts.update(torch=torch.__version__, cuda_available=torch.cuda.is_available())
    except ImportError:
        facts["torch"] = None
    from sam2ms.runtime import cuda

    count, why = cuda.device_status()
    facts.update(cuda_devices=count, why_none=why)
    if count:
        facts["device"] = cuda.device_name()
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        facts["nvidia_smi"] = smi.stdout.strip()
    return facts


def gpu_tests(timeout: float) -> dict[str, Any]:
    proc = _run(
        [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_gpu.py"],
        timeout,
    )
    tail = proc.stdout.strip().splitlines()
    skipped = [line for line in tail if line.startswith("SKIPPED")]
    return {
        "status": "ok" if proc.returncode == 0 else "failed",
        "summary": tail[-1] if tail else "",
        "skipped": skipped,
    }


def reference_suite(out: Path, quick: bool, timeout: float) -> dict[str, Any]:
    args = [sys.executable, "benchmarks/gpu_suite.py", "--out", str(out / "suite")]
    args += ["--tile", "256", "--only", "sam2ms_hiera_t", "--iterations", "5"] if quick else []
    try:
        proc = _run(args, timeout)
        status, why = ("ok", None) if proc.returncode == 0 else ("failed", proc.stderr[-1500:])
    except subprocess.TimeoutExpired:  # the models finished before the budget ran out keep their tables
        status, why = "partial", f"stopped after {timeout:.0f} s (the budget); tables of the models it finished kept"
    tables = sorted((out / "suite").glob("bench-*.md"))
    return {"status": status, "tables": [str(t) for t in tables], "why": why}


def stream_pipeline(out: Path, quick: bool) -> dict[str, Any]:
    """PyTorch CUDA-stream lanes: tiles/s for K = 1, 2, 4 lanes, and the whole tiled pipeline, with
    the engine a GPU user runs (BF16 replayed from CUDA graphs; ``quick``: FP32 eager).
    """
    import numpy as np
    import torch
    from PIL import Image

    from sam2ms.bench.options import BenchOptions, TorchVariant
    from sam2ms.bench.pipeline import write_tiled_tif
    from sam2ms.bench.report import save_report
    from sam2ms.bench.runner import run_bench
    from sam2ms.data.synth import render_road_scene
    from sam2ms.models import create_model
    from sam2ms.models.checkpoint import save_checkpoint
    from sam2ms.runtime.backends import BackendOptions, open_model
    from sam2ms.runtime.pipeline import InferOptions, run_inference

    name, tile, scene_px, n_scenes = ("sam2ms_nano", 256, 1024, 2) if quick else ("sam2ms_hiera_t", 1024, 4096, 8)
    spelled = "fp32" if quick else "bf16+graph"
    variant = TorchVariant.parse(spelled)
    torch.manual_seed(0)
    ckpt = save_checkpoint(out / "streams" / f"{name}.pt", create_model(name), image_size=tile, epoch=0, step=0)
    report = run_bench(
        BenchOptions(
            models=[ckpt],
            batches=[2],
            streams=[1, 2, 4],
            iterations=3 if quick else 10,
            warmup=2,
            accuracy_tiles=1,
            torch_variants=[spelled],
        )
    )
    save_report(report, stem=out / "streams" / "bench-streams")
    engine_rows = [r for r in report["rows"] if r["subject"] == variant.label]
    lanes = {r["streams"]: r["throughput"]["tiles_per_s"] for r in engine_rows}
    splits = {r["streams"]: r["split_ms"] for r in engine_rows}
    # Eight scenes as PNG and as tiled GeoTIFF (the workers decode one while the lanes infer
    # another), and one large PNG alone (streamed: its first tile waits for one strip of rows).
    image, _ = render_road_scene(scene_px, scene_px, np.random.default_rng(0), scale=tile / 256)
    folders = {
        "png": out / "streams" / "scenes",
        "tif": out / "streams" / "scenes_tif",
        "one_png": out / "streams" / "one",
    }
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folders["png"] / "scene0.png")
    for i in range(1, n_scenes):
        shutil.copyfile(folders["png"] / "scene0.png", folders["png"] / f"scene{i}.png")
    big = 1536 if quick else 6144
    one, _ = render_road_scene(big, big, np.random.default_rng(1), scale=tile / 256)
    Image.fromarray(one).save(folders["one_png"] / f"scene{big}.png")
    skipped = []
    if importlib.util.find_spec("rasterio") is not None:
        write_tiled_tif(folders["tif"] / "scene0.tif", image)
        for i in range(1, n_scenes):
            shutil.copyfile(folders["tif"] / "scene0.tif", folders["tif"] / f"scene{i}.tif")
    else:
        del folders["tif"]
        skipped.append("pipeline over tiled GeoTIFFs: rasterio is not installed here ([geo])")
    pipeline: dict[str, dict[int, Any]] = {kind: {} for kind in folders}
    with open_model(ckpt, "torch", BackendOptions(tile=tile)) as backend:  # PyTorch on a CPU has one lane
        counts = [k for k in (1, 2, 4) if backend.info.max_lanes is None or k <= backend.info.max_lanes]
    for kind, folder in folders.items():
        for k in counts:
            with open_model(ckpt, "torch", variant.backend_options(tile)) as backend:
                s = run_inference(
                    backend,
                    InferOptions(
                        folder,
                        out / "streams" / f"masks_{kind}{k}",
                        batch=2,
                        streams=k,
                        workers=4,
                        fmt="tif" if kind == "tif" else "png",
                    ),
                )
            pipeline[kind][k] = {
                "tiles": s["tiles"],
                "tiles_per_s": s["tiles_per_s"],
                "stage_seconds": s["stage_seconds"],
                "thread_busy": s["thread_busy"],
                "ratio_to_lanes": s["tiles_per_s"] / lanes[k] if lanes.get(k) else None,
            }
    return {
        "model": name,
        "tile": tile,
        "engine": variant.label,
        "device": report["rows"][0]["device"],
        "lanes_tiles_per_s": lanes,
        "split_ms": splits,
        "scenes": f"{n_scenes} x {scene_px}²",
        "one_scene": f"{big}²",
        "pipeline": pipeline,
        "skipped": skipped,
    }


def cpu_bf16(out: Path, quick: bool, timeout: float) -> dict[str, Any]:
    """Issue 16's table on this host's CPU where it has native BF16 (``quick``: the nano model at
    256² in FP32, a smoke test of this step on any CPU).
    """
    from sam2ms.runtime.backends.base import cpu_has_native_bf16, cpu_name

    native = cpu_has_native_bf16()
    if importlib.util.find_spec("openvino") is None:
        return {"status": "skipped", "why": "openvino is not installed (make gpu-wheels carries its wheel)"}
    if not native and not quick:
        return {"status": "skipped", "why": f"{cpu_name()} has no native BF16 (no avx512_bf16 or amx_bf16 flag)"}
    entry = ["--only", "sam2ms_nano"] if quick else ["--only", "sam2ms_hiera_t", "--tile", "512"]
    proc = _run(
        [
            sys.executable,
            "benchmarks/cpu_suite.py",
            "--out",
            str(out / "cpu"),
            *entry,
            "--batch",
            "1",
            "--no-int8",
            "--threads",
            "2",
            "--torch",
            "fp32,bf16" if native else "fp32",
        ],
        timeout,
        env={"CUDA_VISIBLE_DEVICES": ""},
    )  # the CPU's own rows: PyTorch must not take the GPU
    tables = sorted((out / "cpu").glob("bench-*.md"))
    if proc.returncode or not tables:
        return {"status": "failed", "why": proc.stderr[-1500:]}
    return {"summary": f"{cpu_name()}, 2 threads, native BF16: {native}", "tables": [str(t) for t in tables]}


def train_speed(quick: bool, timeout: float) -> dict[str, Any]:
    """Training throughput of SAM2MS-L at 1024², batch 2, BF16 (the paper's setting on one GPU)."""
    args = (
        ["--model", "sam2ms_nano", "--size", "256", "--steps", "3"]
        if quick
        else ["--model", "sam2ms_hiera_l", "--size", "1024", "--batch", "2", "--amp", "bf16", "--steps", "60"]
    )
    proc = _run([sys.executable, "benchmarks/train_speed.py", *args], timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {"status": "failed", "why": proc.stderr[-1500:]}
    result = json.loads(lines[-1])
    return {"summary": ", ".join(f"{k} {result[k]}" for k in sorted(result) if k not in ("date",)), **result}


def markdown(facts: dict[str, Any], steps: list[dict[str, Any]]) -> str:
    lines = [
        f"## GPU check {facts.get('date')} on {facts.get('device', 'no GPU')} ({facts.get('nvidia_smi', '')})",
        "",
        "| step | status | seconds | result |",
        "| --- | --- | --- | --- |",
    ]
    for s in steps:
        detail = " ".join(str(s.get("summary") or s.get("why") or "").split())  # one table line
        lines.append(f"| {s['step']} | {s['status']} | {s.get('seconds', '')} | {detail[:200]} |")
    streams = next((s for s in steps if s["step"] == "stream pipeline" and s["status"] == "ok"), None)
    if streams:
        lines += [
            "",
            f"PyTorch CUDA-stream lanes ({streams['model']} @ {streams['tile']}², {streams['engine']}, "
            "batch 2) and the "
            f"tiled pipeline over {streams['scenes']} scenes and one {streams['one_scene']} PNG "
            "(pipeline tiles/s, its ratio to the lanes, the scheduler thread's busy fraction):",
            "",
            "| streams | lanes tiles/s | H2D / compute / D2H ms | scenes, PNG | scenes, tiled GeoTIFF "
            "| one large PNG |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for k, rate in streams["lanes_tiles_per_s"].items():
            sp = streams["split_ms"].get(k) or {}
            split = " / ".join(f"{sp[x]:.2f}" for x in ("h2d", "compute", "d2h")) if sp else "—"
            cells = []
            for kind in ("png", "tif", "one_png"):
                pl = streams["pipeline"].get(kind, {}).get(k) or {}
                ratio, busy = pl.get("ratio_to_lanes"), pl.get("thread_busy", {}).get("scheduler", {}).get("max")
                cells.append(
                    f"{pl['tiles_per_s']:.1f} ({ratio:.2f}; {busy:.2f})" if ratio and busy is not None else "—"
                )
            lines.append(f"| {k} | {rate:.2f} | {split} | " + " | ".join(cells) + " |")
    for s in steps:
        for table in s.get("tables") or []:
            lines += ["", Path(table).read_text()]
    not_run = [s for s in steps if s["status"] != "ok"] + [
        {"step": line, "status": "skipped"} for s in steps for line in s.get("skipped") or []
    ]
    if not_run:
        lines += ["", "Not run or failed:", ""] + [
            f"- {s['step']}: {s['status']} {s.get('why') or ''}"[:400] for s in not_run
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budget-s", type=float, default=540.0, help="stop starting steps after this many seconds")
    p.add_argument("--quick", action="store_true", help="nano model, small tiles: a smoke test of this script")
    p.add_argument("--no-install", action="store_true", help="skip step 1 (already installed)")
    p.add_argument(
        "--only",
        action="append",
        choices=["tests", "streams", "cpu", "suite", "train"],
        help="run only these GPU steps (repeatable; default all)",
    )
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, args.budget_s)
    if not args.no_install:
        check.step("install", 30, install)
    facts = check.step("device facts", 5, device_facts) or {}
    has_gpu = bool(facts.get("cuda_devices")) and bool(facts.get("cuda_available"))
    if has_gpu or args.quick:
        steps: dict[str, tuple[str, float, Callable[[], dict[str, Any]]]] = {
            "tests": ("pytest -m gpu", 60, lambda: gpu_tests(max(check.left() - 400, 120))),
            "streams": ("stream pipeline", 150, lambda: stream_pipeline(args.out, args.quick or not has_gpu)),
            "cpu": ("host CPU BF16", 150, lambda: cpu_bf16(args.out, args.quick, min(check.left() - 5, 300))),
            "train": (
                "training throughput",
                100,
                lambda: train_speed(args.quick or not has_gpu, min(check.left() - 5, 200)),
            ),
            "suite": (
                "PyTorch reference suite",
                240,
                lambda: reference_suite(args.out, args.quick or not has_gpu, max(check.left() - 10, 60)),
            ),
        }
        for key, (name, needs_s, run) in steps.items():
            if not args.only or key in args.only:
                check.step(name, needs_s, run)
    else:
        check.steps.append({"step": "GPU steps", "status": "skipped", "why": f"no usable GPU: {facts.get('why_none')}"})
    report = {"facts": facts, "steps": check.steps}
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    table = markdown(facts, check.steps)
    (args.out / "gpu_check.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
