"""Measure models: every subject (artifact or PyTorch reference variant) x batch x streams.

A *subject* is something that can be opened as a runtime backend: an exported artifact (plan,
ONNX, checkpoint) or a PyTorch reference variant of the checkpoint (eager FP32, autocast
FP16/BF16, ``torch.compile``). Each row times ``iterations`` batches per stream after ``warmup``
ones, streams running concurrently from their own threads on their own lanes (as
``sam2ms-infer --streams`` does), and reports latency percentiles, throughput, the H2D/compute/D2H
split where the lane measures it, peak memory, FLOPs/MFU and — per subject — accuracy against the
PyTorch FP32 reference on the same synthetic tiles. Every row is also a ratio to the reference
row of the same batch (eager FP32, one stream).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.artifacts import Sidecar
from sam2ms.errors import UsageError
from sam2ms.metrics import RoadMetrics, agreement, sigmoid
from sam2ms.preprocess import model_input

from .host import host, versions
from .peaks import mfu, peak_tflops
from .stats import latency_ms, throughput
from .subjects import Subject, subjects, synthetic_tiles
from .timing import measure

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

    def validate(self) -> BenchOptions:
        """Refuse bad options before anything is loaded."""
        if not self.models:
            raise UsageError("give at least one MODEL (.plan, .onnx or .pt)")
        if self.iterations < 1:
            raise UsageError(f"--iterations {self.iterations}: at least 1 timed batch is needed")
        if self.warmup < 0:
            raise UsageError(f"--warmup {self.warmup}: cannot be negative")
        if not self.batches or min(self.batches) < 1 or not self.streams or min(self.streams) < 1:
            raise UsageError("--batch and --streams take positive integers, e.g. --batch 1,2,4 --streams 1,2")
        unknown = [v for v in self.torch_variants if v not in TORCH_VARIANTS]
        if unknown:
            raise UsageError(f"--torch {','.join(unknown)}: use some of {', '.join(TORCH_VARIANTS)}")
        if self.accuracy_tiles < 1:
            raise UsageError("--accuracy-tiles must be at least 1")
        return self


def _accuracy(lane: Any, tiles: np.ndarray, batch: int) -> np.ndarray:
    out = [lane.infer(tiles[i:i + batch])[: len(tiles[i:i + batch]), 0] for i in range(0, len(tiles), batch)]
    return sigmoid(np.concatenate(out), np.float32)


def _flops_per_tile(model_name: str | None, tile: int) -> float | None:
    try:
        from sam2ms.models.stats import model_stats

        return model_stats(model_name, tile)["gflops"] * 1e9 if model_name else None
    except (ImportError, UsageError, KeyError):
        return None


def check_batches(label: str, info: Any, batches: list[int]) -> None:
    """Every asked batch inside the model's optimisation profile, or a UsageError naming it."""
    for b in batches:
        if b < info.min_batch or (info.max_batch is not None and b > info.max_batch):
            raise UsageError(f"--batch {b}: {label} was built for batches {info.min_batch}..{info.max_batch} "
                             f"(its optimisation profile); rebuild with sam2ms-export --batch "
                             f"1:{b}:{max(batches)} or choose batches in that range")


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
        self.tiles = self.labels = np.zeros(0, np.uint8)  # set by the first subject
        self.reference_probs: np.ndarray | None = None

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
        check_batches(label, info, opts.batches)

    def subject(self, subject: Subject) -> None:
        opts = self.opts
        backend = subject.open()
        try:
            info = backend.info
            self.check(subject.label, info)
            lanes = backend.lanes(max(opts.streams))
            tiles = model_input(self.tiles, info.input_format)
            probs = _accuracy(lanes[0], tiles, max(opts.batches))
            self.reference_probs = self.reference_probs if self.reference_probs is not None else probs
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
    opts.validate()
    run = _Run(opts, log)
    todo = subjects(opts)
    if not any(s.reference for s in todo):
        log("no PyTorch reference (torch missing, or no checkpoint found): ratios are left out and accuracy is "
            "judged against the first model; pass --reference CKPT")
    # The reference goes first so that every artifact's accuracy is judged against it.
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
            "host": host(),
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
    """What the artifact's own export checks said (parity, or INT8 accuracy); None when unchecked."""
    return Sidecar(side).passed


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each row against the reference row of the same batch (eager FP32 PyTorch, one stream)."""
    refs = {r["batch"]: r for r in rows if r["reference"] and r["streams"] == 1}
    for r in rows:
        ref = refs.get(r["batch"])
        r["vs_reference"] = None if ref is None else {
            "throughput": r["throughput"]["tiles_per_s"] / ref["throughput"]["tiles_per_s"],
            "latency_p50": r["latency_ms"]["p50"] / ref["latency_ms"]["p50"]}
