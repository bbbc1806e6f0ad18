"""Measure models: every subject (artefact or PyTorch reference variant) x batch x streams.

A *subject* is something that can be opened as a runtime backend: an exported artefact (plan,
ONNX, checkpoint) or a PyTorch reference variant of the checkpoint (eager FP32, autocast
FP16/BF16, ``torch.compile``). Each row times ``iterations`` batches per stream after ``warmup``
ones, streams running concurrently from their own threads on their own lanes (as
``sam2ms-infer --streams`` does), and reports latency percentiles, throughput, the H2D/compute/D2H
split where the lane measures it, peak memory, FLOPs/MFU and — per subject — accuracy against the
PyTorch FP32 reference on the same synthetic tiles. Every row is also a ratio to the reference
row of the same batch (eager FP32, one stream).
"""

from __future__ import annotations

import platform
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.errors import UsageError
from sam2ms.metrics import RoadMetrics, agreement, sigmoid
from sam2ms.preprocess import model_input
from sam2ms.runtime.backends.base import cpu_name

from .memory import PeakRss
from .peaks import mfu, peak_tflops
from .stats import latency_ms, throughput

SCHEMA = "sam2ms-bench/1"
TORCH_VARIANTS = ("fp32", "fp16", "bf16", "compile")


@dataclass
class BenchOptions:
    models: list[Path]
    batches: list[int] = field(default_factory=lambda: [1])
    streams: list[int] = field(default_factory=lambda: [1])
    iterations: int = 20
    warmup: int = 3
    backend: str = "auto"
    reference: Path | None = None  # checkpoint; default: the one named in the first sidecar
    torch_variants: list[str] = field(default_factory=lambda: ["fp32"])
    accuracy_tiles: int = 4
    threads: int | None = None
    seed: int = 0
    cuda_graph: bool = False  # also measure each TensorRT plan replayed from CUDA graphs


@dataclass
class Subject:
    label: str
    open: Callable[[], Any]  # -> Backend
    reference: bool = False  # the eager FP32 PyTorch row every ratio refers to


def validate(opts: BenchOptions) -> None:
    """Refuse bad options before anything is loaded."""
    if not opts.models:
        raise UsageError("give at least one MODEL (.plan, .onnx or .pt)")
    if opts.iterations < 1:
        raise UsageError(f"--iterations {opts.iterations}: at least 1 timed batch is needed")
    if opts.warmup < 0:
        raise UsageError(f"--warmup {opts.warmup}: cannot be negative")
    if not opts.batches or min(opts.batches) < 1 or not opts.streams or min(opts.streams) < 1:
        raise UsageError("--batch and --streams take positive integers, e.g. --batch 1,2,4 --streams 1,2")
    unknown = [v for v in opts.torch_variants if v not in TORCH_VARIANTS]
    if unknown:
        raise UsageError(f"--torch {','.join(unknown)}: use some of {', '.join(TORCH_VARIANTS)}")
    if opts.accuracy_tiles < 1:
        raise UsageError("--accuracy-tiles must be at least 1")


def synthetic_tiles(tile: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded synthetic road tiles at training scale: (N x T x T x 3 uint8 RGB, N x T x T labels).
    Each subject gets them in its own input format (:func:`sam2ms.preprocess.model_input`)."""
    from sam2ms.data.synth import render_road_scene

    rng = np.random.default_rng([seed, tile, 77])
    pairs = [render_road_scene(tile, tile, rng, scale=tile / 256) for _ in range(count)]
    return np.stack([img for img, _ in pairs]), np.stack([lab for _, lab in pairs])


def _reference_checkpoint(opts: BenchOptions) -> Path | None:
    """--reference, else the checkpoint a model's sidecar names (when it still exists)."""
    if opts.reference is not None:
        if not opts.reference.is_file():
            raise UsageError(f"--reference {opts.reference}: checkpoint not found")
        return opts.reference
    from sam2ms.export.sidecar import read_sidecar, sidecar_path

    for model in opts.models:
        if model.suffix == ".pt" and model.is_file():
            return model
        if sidecar_path(model).is_file():
            found = _find_checkpoint(model, read_sidecar(model).get("checkpoint") or {})
            if found is not None:
                return found
    return None


def _find_checkpoint(model: Path, recorded: dict[str, Any]) -> Path | None:
    """The checkpoint a sidecar names: its path as recorded (often relative to where the export
    ran), else that path under each folder above the artefact — accepted only when its SHA-256 is
    the recorded one, so a different file of the same name is never taken for the reference."""
    from sam2ms.export.sidecar import sha256_file

    path = recorded.get("path")
    if not path:
        return None
    if Path(path).is_file():
        return Path(path)
    if Path(path).is_absolute() or not recorded.get("sha256"):
        return None
    for folder in model.resolve().parents:
        candidate = folder / path
        if candidate.is_file() and sha256_file(candidate) == recorded["sha256"]:
            return candidate
    return None


def subjects(opts: BenchOptions) -> list[Subject]:
    """The artefacts to measure, then the PyTorch reference variants (when torch and a checkpoint are there)."""
    from sam2ms.runtime.backends import open_model

    found = [Subject(m.name, lambda m=m: open_model(m, opts.backend, threads=opts.threads, allow_failed=True,
                                                    eager_kernels=True))
             for m in opts.models if m.suffix != ".pt"]
    if opts.cuda_graph:  # each plan twice: plain enqueue, and replayed from a CUDA graph
        found += [Subject(f"{m.name} (CUDA graph)", lambda m=m: open_model(m, opts.backend, allow_failed=True,
                                                                           eager_kernels=True, cuda_graph=True))
                  for m in opts.models if m.suffix in (".plan", ".engine")]
    ckpt = _reference_checkpoint(opts)
    try:
        import torch  # noqa: F401
    except ImportError:
        ckpt = None
    if ckpt is not None:
        from sam2ms.runtime.backends.torch_backend import TorchBackend

        tile = _artefact_tile(opts.models)
        if opts.threads:
            import torch

            torch.set_num_threads(opts.threads)
        for variant in dict.fromkeys(["fp32", *opts.torch_variants]):
            precision = "fp32" if variant == "compile" else variant
            label = f"pytorch {'compiled' if variant == 'compile' else 'eager'} {precision}"
            found.append(Subject(label, lambda p=precision, v=variant: TorchBackend(ckpt, tile, precision=p,
                                                                                     compile=v == "compile"),
                                 reference=variant == "fp32"))
    return found


def _artefact_tile(models: list[Path]) -> int | None:
    """The tile of the first exported artefact: the PyTorch reference runs at it, whatever size the
    checkpoint was trained at (the authors train at 352 px and deploy at 1024 px)."""
    from sam2ms.export.sidecar import read_sidecar, sidecar_path
    from sam2ms.runtime.backends.onnxruntime_backend import onnx_graph_tile

    for model in models:
        if model.suffix == ".pt" or not model.is_file():
            continue
        if sidecar_path(model).is_file():
            return int(read_sidecar(model)["tile"])
        if model.suffix == ".onnx":
            return onnx_graph_tile(model)
    return None


def measure(lanes: list[Any], batch: np.ndarray, warmup: int, iterations: int) -> dict[str, Any]:
    """Time ``iterations`` batches on each lane concurrently (after ``warmup`` each)."""
    latencies: list[list[float]] = [[] for _ in lanes]
    splits: list[dict[str, float]] = []
    start = threading.Barrier(len(lanes) + 1)
    errors: list[BaseException] = []

    def work(i: int, lane: Any) -> None:
        try:
            for _ in range(max(warmup, 1)):  # at least once per shape: kernels compiled, buffers made
                lane.infer(batch)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
        start.wait()
        if errors:
            return
        for _ in range(iterations):
            t0 = time.perf_counter()
            lane.infer(batch)
            latencies[i].append(time.perf_counter() - t0)
            if lane.last_split_ms:
                splits.append(dict(lane.last_split_ms))

    threads = [threading.Thread(target=work, args=(i, lane)) for i, lane in enumerate(lanes)]
    with PeakRss() as rss:
        for t in threads:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    if errors:
        raise errors[0]
    flat = [x for lane in latencies for x in lane]
    split = ({k: float(np.mean([s[k] for s in splits])) for k in splits[0]} if splits else None)
    return {"latency": flat, "wall": wall, "tiles": len(flat) * len(batch), "split_ms": split,
            "host_rss_increase_mb": rss.increase_bytes / 2**20}


def _accuracy(lane: Any, tiles: np.ndarray, batch: int) -> np.ndarray:
    out = [lane.infer(tiles[i:i + batch])[: len(tiles[i:i + batch]), 0] for i in range(0, len(tiles), batch)]
    return sigmoid(np.concatenate(out), np.float32)


def _flops_per_tile(model_name: str | None, tile: int) -> float | None:
    try:
        from sam2ms.models.stats import model_stats

        return model_stats(model_name, tile)["gflops"] * 1e9 if model_name else None
    except (ImportError, UsageError, KeyError):
        return None


class _Run:
    """State shared across subjects: the tile, the accuracy tiles and the reference probabilities."""

    def __init__(self, opts: BenchOptions, log: Callable[[str], None]) -> None:
        self.opts, self.log = opts, log
        self.rows: list[dict[str, Any]] = []
        self.skipped: list[dict[str, str]] = []
        self.tile: int | None = None
        self.model_name: str | None = None
        self.reference_label = ""
        self.flops: float | None = None
        self.tiles = self.labels = self.reference_probs = None

    def check(self, label: str, info: Any) -> None:
        """Same tile for all; every asked batch inside the model's profile."""
        opts = self.opts
        if self.tile is None:
            self.tile, self.model_name, self.reference_label = info.tile, info.sidecar.get("model"), label
            self.tiles, self.labels = synthetic_tiles(info.tile, opts.accuracy_tiles, opts.seed)
            self.flops = _flops_per_tile(self.model_name, info.tile)  # builds the model: once per run
        elif info.tile != self.tile:
            raise UsageError(f"{label}: {info.tile}px tiles, but the others are {self.tile}px; "
                             "benchmark models of one tile size together")
        for b in opts.batches:
            if b < info.min_batch or (info.max_batch is not None and b > info.max_batch):
                raise UsageError(f"--batch {b}: {label} was built for batches {info.min_batch}..{info.max_batch} "
                                 f"(its optimisation profile); rebuild with sam2ms-export --batch "
                                 f"1:{b}:{max(opts.batches)} or choose batches in that range")

    def subject(self, subject: Subject) -> None:
        opts = self.opts
        backend = subject.open()
        try:
            info = backend.info
            self.check(subject.label, info)
            lanes = backend.lanes(max(opts.streams))
            tiles = model_input(self.tiles, info.input_format)
            probs = _accuracy(lanes[0], tiles, max(opts.batches))
            self.reference_probs = probs if self.reference_probs is None else self.reference_probs
            accuracy = {**_judge(probs, self.reference_probs, self.labels), "reference": self.reference_label}
            device = backend.device_name()
            for b in opts.batches:
                batch = np.resize(tiles, (b, *tiles.shape[1:]))
                for s in opts.streams:
                    if s > len(lanes):
                        self.skipped.append({"subject": subject.label, "batch": str(b), "streams": str(s),
                                             "why": f"{backend.name} runs at most {len(lanes)} concurrent lane(s)"})
                        continue
                    self.log(f"  {subject.label}: batch {b}, {s} stream(s)")
                    self.rows.append(_row(subject, backend, device, self.flops, accuracy, b, s, info.tile,
                                          measure(lanes[:s], batch, opts.warmup, opts.iterations)))
        finally:
            backend.close()


def run_bench(opts: BenchOptions, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Measure everything; returns the report (see :mod:`sam2ms.bench.report` for its schema)."""
    validate(opts)
    run = _Run(opts, log)
    todo = subjects(opts)
    if not any(s.reference for s in todo):
        log("no PyTorch reference (torch missing, or no checkpoint found): ratios are left out and accuracy is "
            "judged against the first model; pass --reference CKPT")
    # The reference goes first so that every artefact's accuracy is judged against it.
    for subject in sorted(todo, key=lambda s: not s.reference):
        log(f"measuring {subject.label}")
        try:
            run.subject(subject)
        except UsageError:
            raise
        except Exception as exc:  # e.g. torch.compile without a working compiler: "where it works"
            if not subject.label.startswith("pytorch") or subject.reference:
                raise
            run.skipped.append({"subject": subject.label, "why": f"{type(exc).__name__}: {str(exc)[:300]}"})
    _add_ratios(run.rows)
    return {"schema": SCHEMA, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "", "versions": versions(),
            "host": {"cpu": cpu_name(), "python": platform.python_version(), "platform": platform.platform()},
            "model": run.model_name, "tile": run.tile, "iterations": opts.iterations, "warmup": opts.warmup,
            "accuracy_tiles": opts.accuracy_tiles, "rows": run.rows, "skipped": run.skipped}


def _judge(probs: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    vs_label = RoadMetrics()
    vs_label.update_batch(probs, labels)
    return {**agreement(reference, probs), "f1_vs_label": vs_label.compute()["f1"]}


def _row(subject: Subject, backend: Any, device: str, flops: float | None, accuracy: dict[str, Any], batch: int,
         streams: int, tile: int, m: dict[str, Any]) -> dict[str, Any]:
    lat = latency_ms(m["latency"])
    thr = throughput(m["tiles"], m["wall"], tile)
    precision = backend.info.precision
    peak = peak_tflops(device, precision)
    device_mb = backend.device_peak_mb()
    return {"subject": subject.label, "backend": backend.name, "kind": backend.info.kind, "precision": precision,
            "reference": subject.reference, "device": device, "batch": batch, "streams": streams,
            "latency_ms": lat, "throughput": thr, "split_ms": m["split_ms"],
            "memory_mb": {"host_rss_increase": m["host_rss_increase_mb"], "device_peak": device_mb},
            "checks_passed": _checks_passed(backend.info.sidecar), "flops_per_tile": flops, "peak_tflops": peak,
            "mfu": mfu(flops, thr["tiles_per_s"], peak),
            "accuracy": accuracy}


def _checks_passed(side: dict[str, Any]) -> bool | None:
    """What the artefact's own export checks said (parity, or INT8 accuracy); None when unchecked."""
    from sam2ms.export.sidecar import failed_checks, recorded_checks

    return None if not recorded_checks(side) else not failed_checks(side)


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each row against the reference row of the same batch (eager FP32 PyTorch, one stream)."""
    refs = {r["batch"]: r for r in rows if r["reference"] and r["streams"] == 1}
    for r in rows:
        ref = refs.get(r["batch"])
        r["vs_reference"] = None if ref is None else {
            "throughput": r["throughput"]["tiles_per_s"] / ref["throughput"]["tiles_per_s"],
            "latency_p50": r["latency_ms"]["p50"] / ref["latency_ms"]["p50"]}


def versions() -> dict[str, str]:
    """Library versions that shape the figures (absent ones left out)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("sam2ms", "numpy", "onnxruntime", "onnxruntime-gpu", "torch", "tensorrt", "tensorrt-rtx",
                 "cuda-python"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
