"""Accuracy: the tiles every check measures on, the thresholds, and the verdicts.

One module owns what decides whether an artifact, a precision or a backend may be trusted, so
the stages cannot drift apart: the export's parity check (``sam2ms.export``), the calibration's
INT8 report (``sam2ms.calib``), ``sam2ms-infer --check-against`` and OpenVINO's gates at load
(``sam2ms.runtime``), and the benchmark's accuracy columns all call it. What runs the models to get
the probabilities stays with each stage (it needs their engines); this module is numpy only, so a
deployment host imports it. The sidecar record of a verdict is :mod:`sam2ms.artifacts`.

What a gate needs to decide (measured, benchmarks/RESULTS.md): a reduced float precision (FP16,
BF16) flips only pixels whose FP32 probability is within a few hundredths of 0.5, so masks are
compared only where the reference is decided (``|p - 0.5| >= 0.05``, :class:`Thresholds`), and on
at least :data:`GATE_PIXELS` pixels (2^18: two 1024² tiles, four 256² ones, :func:`gate_tiles`).
With fewer, one tile's undecided band is a large share of the sample: the OpenVINO BF16 gate on an
untrained Hiera-T at 512² measured mask IoU 0.99489 over all pixels of 2 tiles where 4 tiles gave
0.9980, and refused a precision that agrees wherever the model is sure. INT8 is judged by its
calibration's targets (:data:`INT8_TARGETS`: mask IoU to the FP32 masks and the F1 drop), never by
a float precision's gate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from .metrics import THRESHOLD, agreement, mask_iou, probability_parity


@dataclass(frozen=True)
class Thresholds:
    """Parity pass criteria for one precision against the PyTorch FP32 reference.

    ``decisive_margin``: masks are compared only where the reference is decided, ``|p - 0.5| >=``
    the margin. A reduced float precision (FP16, BF16: 10 and 7 mantissa bits) moves probabilities by
    a few hundredths at most, so it flips exactly the pixels the FP32 model itself was unsure of:
    on the demo model in BF16 every one of the 236 flipped pixels (of 50 574 road pixels, mask IoU
    0.9953 over all pixels) had an FP32 probability within 0.036 of 0.5 (benchmarks/RESULTS.md).
    A cut on all pixels then measures how undecided the model is, not the precision's error, and
    refused models that agree everywhere they are sure. ``max_abs_p999`` bounds the 99.9th
    percentile of ``|Δp|`` (what could move a decided pixel: an overflow, a wrong LayerNorm).
    """

    max_abs: float | None
    min_mask_iou: float
    decisive_margin: float = 0.0
    max_abs_p999: float | None = None


@dataclass(frozen=True)
class Verdict:
    """One check's outcome, whoever measured it: ``passed`` (None: not measured, ``figures`` say
    why), the ``failures`` in words, and the ``figures`` it was decided on (free-form, recorded as
    measured). Sidecars, summaries and the gate cache hold its :meth:`to_json`; a recorded one is
    read back by :meth:`from_json`.
    """

    passed: bool | None
    failures: tuple[str, ...] = ()
    figures: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The record as sidecars have always held it: the figures, then ``passed`` and ``failures``."""
        return {**self.figures, "passed": self.passed, "failures": list(self.failures)}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Verdict:
        """A recorded verdict (a sidecar's, already checked by its schema, or the gate cache's)."""
        passed = record.get("passed")
        figures = {k: v for k, v in record.items() if k not in ("passed", "failures")}
        return cls(passed if isinstance(passed, bool) else None, tuple(record.get("failures") or ()), figures)

    def noted(self, **figures: Any) -> Verdict:
        """This verdict with more figures (who measured it, against what)."""
        return replace(self, figures={**self.figures, **figures})


#: Parity of an exported graph (ONNX Runtime) or a deployed model (``--check-against``) with PyTorch.
PARITY_THRESHOLDS = {
    "fp32": Thresholds(max_abs=1e-4, min_mask_iou=0.999),
    "fp16": Thresholds(max_abs=None, min_mask_iou=0.999, decisive_margin=0.05, max_abs_p999=0.05),
    "bf16": Thresholds(max_abs=None, min_mask_iou=0.999, decisive_margin=0.05, max_abs_p999=0.05),  # OpenVINO
}
#: Pixels a parity check or accuracy gate is measured on at least (2^18: four 256² tiles).
GATE_PIXELS = 1 << 18


#: At most this many tiles, however small (a test's 64² tiles would need 64).
GATE_MAX_TILES = 16


def gate_tiles(tile: int) -> int:
    """The default number of parity tiles of ``tile`` pixels a side (the export's check, the gates
    measured at load): enough for :data:`GATE_PIXELS`, at least 2 and at most
    :data:`GATE_MAX_TILES` (1024²: 2, 256²: 4, 64²: 16).
    """
    return min(GATE_MAX_TILES, max(2, -(-GATE_PIXELS // (tile * tile))))


#: INT8 against FP32 on held-out tiles (calibration's report).
INT8_TARGETS = {"min_mask_iou": 0.98, "max_f1_drop": 0.005}


def judge_parity(precision: str, reference: np.ndarray, candidate: np.ndarray) -> Verdict:
    """Parity figures of ``candidate`` probabilities against ``reference`` and the verdict against
    :data:`PARITY_THRESHOLDS` (an unknown precision is held to the FP16 criteria). ``mask_iou`` is
    over all pixels (reported); the verdict reads ``decisive_mask_iou`` (see :class:`Thresholds`).
    """
    figures: dict[str, Any] = dict(probability_parity(reference, candidate))
    limits = PARITY_THRESHOLDS.get(precision, PARITY_THRESHOLDS["fp16"])
    ref, cand = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    decided = np.abs(ref - THRESHOLD) >= limits.decisive_margin
    figures["p999_abs"] = float(np.quantile(np.abs(ref - cand), 0.999))
    figures["undecided_fraction"] = float(1.0 - decided.mean())
    figures["decisive_mask_iou"] = mask_iou((ref >= THRESHOLD) & decided, (cand >= THRESHOLD) & decided)
    failures = []
    if limits.max_abs is not None and figures["max_abs"] > limits.max_abs:
        failures.append(f"max abs diff {figures['max_abs']:.3g} > {limits.max_abs:g}")
    if limits.max_abs_p999 is not None and figures["p999_abs"] > limits.max_abs_p999:
        failures.append(f"99.9th percentile of |dp| {figures['p999_abs']:.3g} > {limits.max_abs_p999:g}")
    if figures["decisive_mask_iou"] < limits.min_mask_iou:
        where = (
            f" where the reference is decided (|p - 0.5| >= {limits.decisive_margin:g})"
            if limits.decisive_margin
            else ""
        )
        failures.append(f"mask IoU{where} {figures['decisive_mask_iou']:.5f} < {limits.min_mask_iou}")
    figures.update({"reference": "pytorch-fp32", "tiles": len(reference), "thresholds": asdict(limits)})
    return Verdict(not failures, tuple(failures), figures)


def judge_int8(figures: dict[str, Any]) -> Verdict:
    """The INT8 report (mask agreement with FP32 masks, ``f1_drop``) with its verdict against
    :data:`INT8_TARGETS`.
    """
    failures = []
    if figures["mask_iou"] < INT8_TARGETS["min_mask_iou"]:
        failures.append(f"mask IoU to FP32 {figures['mask_iou']:.4f} < {INT8_TARGETS['min_mask_iou']}")
    if figures["f1_drop"] > INT8_TARGETS["max_f1_drop"]:
        failures.append(f"F1 drop {100 * figures['f1_drop']:.2f} points > {100 * INT8_TARGETS['max_f1_drop']:.1f}")
    return Verdict(not failures, tuple(failures), {**figures, "targets": dict(INT8_TARGETS)})


def judge_int8_agreement(reference: np.ndarray, candidate: np.ndarray) -> Verdict:
    """INT8 ``candidate`` probabilities judged against FP32 ``reference`` ones (same shape): their
    :func:`~sam2ms.metrics.agreement` with the FP32 masks as truth, then :func:`judge_int8`. How the
    calibration judges ONNX Runtime's INT8 and ``--openvino`` OpenVINO's.
    """
    figures = agreement(reference, candidate)
    return judge_int8({**figures, "tiles": len(reference), "reference": "fp32 masks", "f1_drop": 1.0 - figures["f1"]})


def judge(precision: str, reference: np.ndarray, candidate: np.ndarray) -> Verdict:
    """``candidate`` probabilities judged against FP32 ``reference`` ones by the criteria of the
    artifact's precision: INT8 by :data:`INT8_TARGETS` (what its calibration promised), float
    precisions by :data:`PARITY_THRESHOLDS`. Every check of a deployed artifact goes through here
    (``--check-against``, OpenVINO's gates), so none holds INT8 to a float precision's gate.
    """
    if precision == "int8":
        return judge_int8_agreement(reference, candidate)
    return judge_parity(precision, reference, candidate)


def needs_gate(file_precision: str, run_precision: str) -> bool:
    """Whether OpenVINO running a file of ``file_precision`` at ``run_precision`` computes otherwise
    than the graph the export (or calibration) checked on ONNX Runtime: in BF16, or an INT8 file.
    """
    return run_precision == "bf16" or file_precision == "int8"


def gate_judge(file_precision: str, reference: np.ndarray) -> Callable[[str, np.ndarray], Verdict]:
    """How OpenVINO's probabilities (N x 1 x T x T) at a run precision are judged against FP32
    ``reference`` ones (:func:`judge`): an INT8 file by the INT8 targets (as its
    calibration judged ONNX Runtime), a float file by its own parity criteria in FP32 and by
    FP16's in BF16.
    """

    def verdict(run_precision: str, candidate: np.ndarray) -> Verdict:
        precision = file_precision if file_precision == "int8" or run_precision == "fp32" else "bf16"
        return judge(precision, reference[:, 0], candidate[:, 0])

    return verdict


def parity_tiles(tile: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` synthetic road tiles as uint8 RGB windows: N x T x T x 3 (the tiles every accuracy
    check and gate measures on: export parity, OpenVINO's gates at load).
    """
    from .data.synth import render_road_scene  # drawn only where a check runs (a deployment host reads verdicts)

    return np.stack([render_road_scene(tile, tile, np.random.default_rng([seed, 7919, i]))[0] for i in range(count)])
