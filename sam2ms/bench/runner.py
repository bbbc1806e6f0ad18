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

import os
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
from sam2ms.runtime.backends.base import Backend

from .host import host, versions
from .options import BenchOptions
from .peaks import mfu, peak_tflops
from .rows import BenchRow
from .stats import latency_ms, throughput
from .subjects import Subject, preflight, subjects, synthetic_tiles
from .timing import measure

SCHEMA = "sam2ms-bench/1"
BEST_PYTORCH_MIN_IOU = 0.995  # a PyTorch variant is a fair baseline only at this mask agreement with FP32


def _accuracy(lane: Any, tiles: np.ndarray, batch: int) -> np.ndarray:
    out = [lane.infer(tiles[i : i + batch])[: len(tiles[i : i + batch]), 0] for i in range(0, len(tiles), batch)]
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
            raise UsageError(
                f"--batch {b}: {label} was built for batches {info.min_batch}..{info.max_batch} "
                f"(its optimisation profile); rebuild with sam2ms-export --batch "
                f"1:{b}:{max(batches)} or choose batches in that range"
            )


@dataclass
class Shared:
    """What every subject's measurement takes from the first one (the reference): its tile, the
    accuracy tiles and their probabilities. Picklable: it crosses into each subject's process.
    """

    tile: int | None = None
    model_name: str | None = None
    reference_label: str = ""
    flops: float | None = None
    tiles: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    reference_probs: np.ndarray | None = None

    def check(self, label: str, info: Any, opts: BenchOptions) -> None:
        """Same tile for all; every asked batch inside the model's profile."""
        if self.tile is None:
            self.tile, self.model_name, self.reference_label = info.tile, info.sidecar.get("model"), label
            self.tiles, self.labels = synthetic_tiles(info.tile, opts.accuracy_tiles, opts.seed)
            self.flops = _flops_per_tile(self.model_name, info.tile)  # builds the model: once per run
        elif info.tile != self.tile:
            raise UsageError(
                f"{label}: {info.tile}px tiles, but the others are {self.tile}px; "
                "benchmark models of one tile size together"
            )
        check_batches(label, info, opts.batches)


Measured = tuple["Shared", list[BenchRow], list[dict[str, str]]]  # shared state, rows, skipped


def measure_subject(
    subject: Subject, opts: BenchOptions, shared: Shared, log: Callable[[str], None] = lambda _: None
) -> Measured:
    """Every (batch, streams) row of one subject; returns the updated shared state, the rows and
    what was skipped. Runs in the subject's own process when the benchmark isolates subjects.
    """
    if opts.threads and subject.label.startswith("pytorch"):
        import torch

        torch.set_num_threads(opts.threads)
    rows: list[BenchRow] = []
    skipped: list[dict[str, str]] = []
    backend = subject.open()
    try:
        info = backend.info
        shared.check(subject.label, info, opts)
        lanes = backend.lanes(max(opts.streams))
        tiles = model_input(shared.tiles, info.input_format)
        probs = _accuracy(lanes[0], tiles, max(opts.batches))
        if shared.reference_probs is None:
            shared.reference_probs = probs
        accuracy = {**_judge(probs, shared.reference_probs, shared.labels), "reference": shared.reference_label}
        device = backend.device_name()
        for b in opts.batches:
            batch = np.resize(tiles, (b, *tiles.shape[1:]))
            for s in opts.streams:
                if s > len(lanes):
                    skipped.append(
                        {
                            "subject": subject.label,
                            "batch": str(b),
                            "streams": str(s),
                            "why": f"{backend.name} runs at most {len(lanes)} concurrent lane(s)",
                        }
                    )
                    continue
                log(f"  {subject.label}: batch {b}, {s} stream(s)")
                rows.append(
                    _row(
                        subject,
                        backend,
                        device,
                        shared.flops,
                        accuracy,
                        b,
                        s,
                        info.tile,
                        measure(lanes[:s], batch, opts.warmup, opts.iterations),
                        opts.threads,
                    )
                )
    finally:
        backend.close()
    return shared, rows, skipped


def _stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _isolated(subject: Subject, opts: BenchOptions, shared: Shared) -> Measured:
    """:func:`measure_subject` in a fresh process: runtimes that keep busy thread pools (OpenVINO's
    TBB, ONNX Runtime's spinning threads, PyTorch's OpenMP) cannot slow the subjects after them.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure_subject, subject, opts, shared, _stderr_log).result()


def run_bench(opts: BenchOptions, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Measure everything; returns the report (see :mod:`sam2ms.bench.report` for its schema)."""
    opts.validate()
    preflight(opts)
    shared = Shared()
    rows: list[BenchRow] = []
    todo, skipped = subjects(opts)
    if not any(s.reference for s in todo):
        log(
            "no PyTorch reference (torch missing, or no checkpoint found): ratios are left out and accuracy is "
            "judged against the first model; pass --reference CKPT"
        )
    # The reference goes first so that every artifact's accuracy is judged against it.
    for subject in sorted(todo, key=lambda s: not s.reference):
        log(f"measuring {subject.label}" + (" (own process)" if opts.isolate else ""))
        try:
            shared, more, left = (
                _isolated(subject, opts, shared) if opts.isolate else measure_subject(subject, opts, shared, log)
            )
        except Exception as exc:  # e.g. torch.compile without a working compiler: "where it works"
            if subject.reference:  # every ratio and accuracy is measured against it
                raise
            why = str(exc) if isinstance(exc, UsageError) else f"{type(exc).__name__}: {str(exc)[:300]}"
            log(f"  {subject.label}: not run ({why})")
            skipped.append({"subject": subject.label, "why": why})
            continue
        rows += more
        skipped += left
    add_ratios(rows)
    return {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        "versions": versions(),
        "host": host(opts.threads),
        "isolated": opts.isolate,
        "model": shared.model_name,
        "tile": shared.tile,
        "iterations": opts.iterations,
        "warmup": opts.warmup,
        "accuracy_tiles": opts.accuracy_tiles,
        "rows": [r.to_json() for r in rows],
        "skipped": skipped,
    }


def _judge(probs: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    vs_label = RoadMetrics()
    vs_label.update_batch(probs, labels)
    return {**agreement(reference, probs), "f1_vs_label": vs_label.compute()["f1"]}


def _row(
    subject: Subject,
    backend: Backend,
    device: str,
    flops: float | None,
    accuracy: dict[str, Any],
    batch: int,
    streams: int,
    tile: int,
    m: dict[str, Any],
    threads: int | None,
) -> BenchRow:
    lat = latency_ms(m["latency"])
    thr = throughput(m["tiles"], m["wall"], tile)
    precision = backend.info.precision
    peak = peak_tflops(device, precision, cores=threads)
    device_mb = backend.device_peak_mb()
    return BenchRow(
        subject=subject.label,
        backend=backend.name,
        kind=backend.info.kind,
        precision=precision,
        reference=subject.reference,
        device=device,
        batch=batch,
        streams=streams,
        latency_ms=lat,
        throughput=thr,
        split_ms=m["split_ms"],
        memory_mb={"host_rss_increase": m["host_rss_increase_mb"], "device_peak": device_mb},
        checks_passed=_checks_passed(backend),
        flops_per_tile=flops,
        peak_tflops=peak,
        mfu=mfu(flops, thr["tiles_per_s"], peak),
        pid=os.getpid(),
        accuracy=accuracy,
    )


def _checks_passed(backend: Backend) -> bool | None:
    """What the artifact's own export checks said (parity, or INT8 accuracy) and, where the backend
    computes otherwise than the checked graph, its accuracy gate (OpenVINO's BF16, INT8); None
    when nothing was checked.
    """
    gate = backend.accuracy_gate
    verdicts = [Sidecar(backend.info.sidecar).passed, gate.passed if gate is not None else None]
    known = [v for v in verdicts if v is not None]
    return all(known) if known else None


def add_ratios(rows: list[BenchRow]) -> None:
    """Each row against two PyTorch rows of the same batch: the *best* (highest throughput among
    the PyTorch variants that keep mask IoU >= 0.995 with FP32: the headline, since a user can
    simply run that) and eager FP32 (the reference every accuracy figure refers to).
    """
    refs = {r.batch: r for r in rows if r.reference and r.streams == 1}
    best: dict[int, BenchRow] = {}
    for r in rows:
        if (
            r.backend == "torch"
            and r.accuracy["mask_iou"] >= BEST_PYTORCH_MIN_IOU
            and (r.batch not in best or r.tiles_per_s > best[r.batch].tiles_per_s)
        ):
            best[r.batch] = r
    for r in rows:
        r.vs_reference = r.ratio_to(refs.get(r.batch))
        r.vs_best_pytorch = r.ratio_to(best.get(r.batch))
        r.gflops_per_s = r.flops_per_tile * r.tiles_per_s / 1e9 if r.flops_per_tile else None
