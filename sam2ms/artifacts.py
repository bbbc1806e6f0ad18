"""The artifact contract: what an exported file is, how it was checked, and one verdict on it.

Every artifact (``model.onnx``, ``model.fp16.onnx``, ``model.int8.onnx``, ``engine.plan``) has a
JSON sidecar beside it (``<artifact>.json``). Export and calibration write it; the runtime reads it
(without torch) and refuses an artifact whose sidecar contradicts what it is asked to do or whose
checks failed; the benchmark measures such an artifact anyway and marks it. The thresholds that
decide "failed" live here too, so the writer and the readers cannot drift apart.

Sidecars travel with their artifacts and may come from anyone (a colleague's folder, a download),
so reading one is reading untrusted data: one schema (:data:`SIDECAR_SCHEMA`) checks every field's
type, range and nesting; names in it are looked up in fixed tables (the TensorRT library) or
resolved inside the artifact's own folder (:func:`file_in_folder`); and the sidecar binds its
artifact by size and SHA-256 (:func:`read_sidecar`), so a sidecar copied beside another file is
refused instead of vouching for it.

numpy only: deployment hosts import this.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from . import __version__
from .deps import TENSORRT_FLAVOURS
from .digests import cached_sha256
from .errors import UsageError
from .fileio import write_json
from .metrics import THRESHOLD, agreement, mask_iou, probability_parity
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, INPUT_FORMATS, MAX_TILE
from .radiometry import STRETCHES
from .schema import (
    SHA256,
    SchemaError,
    boolean,
    const,
    describe,
    either,
    file_name,
    integer,
    json_value,
    list_of,
    load_json,
    number,
    optional,
    record,
    string,
    validate,
)

SIDECAR_FORMAT = "sam2ms-sidecar"
SIDECAR_VERSION = 1


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
    percentile of ``|Δp|`` (what could move a decided pixel: an overflow, a wrong LayerNorm)."""

    max_abs: float | None
    min_mask_iou: float
    decisive_margin: float = 0.0
    max_abs_p999: float | None = None


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
    :data:`GATE_MAX_TILES` (1024²: 2, 256²: 4, 64²: 16)."""
    return min(GATE_MAX_TILES, max(2, -(-GATE_PIXELS // (tile * tile))))


#: INT8 against FP32 on held-out tiles (calibration's report).
INT8_TARGETS = {"min_mask_iou": 0.98, "max_f1_drop": 0.005}

#: The checks a sidecar can record, and what a failure of each means for a deployment.
CHECKS = {
    "parity": "its export failed the parity check against PyTorch ({}); re-export before deploying it",
    "parity_of_source_onnx": "it was built from an ONNX that failed its parity check against PyTorch ({}); "
                             "re-export before deploying it",
    "accuracy_vs_fp32": "INT8 missed its accuracy target against FP32 ({}); recalibrate with --auto-exclude, "
                        "or deploy FP16",
}


def judge_parity(precision: str, reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """Parity figures of ``candidate`` probabilities against ``reference`` and the verdict against
    :data:`PARITY_THRESHOLDS` (an unknown precision is held to the FP16 criteria). ``mask_iou`` is
    over all pixels (reported); the verdict reads ``decisive_mask_iou`` (see :class:`Thresholds`)."""
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
        where = f" where the reference is decided (|p - 0.5| >= {limits.decisive_margin:g})" \
            if limits.decisive_margin else ""
        failures.append(f"mask IoU{where} {figures['decisive_mask_iou']:.5f} < {limits.min_mask_iou}")
    figures.update({"reference": "pytorch-fp32", "tiles": int(len(reference)), "thresholds": asdict(limits),
                    "passed": not failures, "failures": failures})
    return figures


def judge_int8(figures: dict[str, Any]) -> dict[str, Any]:
    """The INT8 report (mask agreement with FP32 masks, ``f1_drop``) with its verdict against
    :data:`INT8_TARGETS`."""
    failures = []
    if figures["mask_iou"] < INT8_TARGETS["min_mask_iou"]:
        failures.append(f"mask IoU to FP32 {figures['mask_iou']:.4f} < {INT8_TARGETS['min_mask_iou']}")
    if figures["f1_drop"] > INT8_TARGETS["max_f1_drop"]:
        failures.append(f"F1 drop {100 * figures['f1_drop']:.2f} points > {100 * INT8_TARGETS['max_f1_drop']:.1f}")
    return {**figures, "targets": dict(INT8_TARGETS), "passed": not failures, "failures": failures}


def judge_int8_agreement(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """INT8 ``candidate`` probabilities judged against FP32 ``reference`` ones (same shape): their
    :func:`~sam2ms.metrics.agreement` with the FP32 masks as truth, then :func:`judge_int8`. How the
    calibration judges ONNX Runtime's INT8 and ``--openvino`` OpenVINO's."""
    figures = agreement(reference, candidate)
    return judge_int8({**figures, "tiles": int(len(reference)), "reference": "fp32 masks",
                       "f1_drop": 1.0 - figures["f1"]})


def judge(precision: str, reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """``candidate`` probabilities judged against FP32 ``reference`` ones by the criteria of the
    artifact's precision: INT8 by :data:`INT8_TARGETS` (what its calibration promised), float
    precisions by :data:`PARITY_THRESHOLDS`. Every check of a deployed artifact goes through here
    (``--check-against``, OpenVINO's gates), so none holds INT8 to a float precision's gate."""
    if precision == "int8":
        return judge_int8_agreement(reference, candidate)
    return judge_parity(precision, reference, candidate)


def normalization_record(applied_by: str | None = None) -> dict[str, Any]:
    """How pixels become the model's input, as checkpoints and sidecars record it."""
    record: dict[str, Any] = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "input": "RGB / 255"}
    if applied_by is not None:
        record["applied_by"] = applied_by
    return record


def sidecar_path(artifact: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def write_sidecar(artifact: str | Path, fields: dict[str, Any]) -> Path:
    """Write the sidecar of ``artifact`` (atomically), adding format, version and the file's hash."""
    artifact = Path(artifact)
    data = {"format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION, "sam2ms_version": __version__,
            "artifact": artifact.name, "sha256": cached_sha256(artifact), "size_bytes": artifact.stat().st_size,
            **fields}
    return write_json(sidecar_path(artifact), data)


def _builder(value: Any, where: str) -> str:
    """The TensorRT library a plan was built with: a name looked up in a fixed table, never imported
    as given."""
    if value not in TENSORRT_FLAVOURS:
        shown = repr(value[:40]) if isinstance(value, str) else describe(value)
        raise SchemaError(where, f"unknown builder {shown}: expected one of {', '.join(TENSORRT_FLAVOURS)}")
    return str(value)


_NAMES = string(max_len=4096)
_FIGURES = json_value()
#: A recorded check (parity, INT8 accuracy, an OpenVINO gate): its verdict typed, figures free-form.
_CHECK = record({"passed": boolean(), "failures": list_of(_NAMES)}, required=("passed",), other=_FIGURES)
_GATE = record({"passed": optional(boolean()), "failures": list_of(_NAMES), "reference": _NAMES,
                "measured": boolean(), "why": _NAMES}, other=_FIGURES)
_FILE_REF = record({"file": file_name(), "sha256": optional(SHA256)}, required=("file",))
_DIM = either(integer(0), string(max_len=64), expected="a dimension (a size or a name)")
_TENSOR = record({"name": _NAMES, "shape": list_of(_DIM, max_len=8), "dtype": _NAMES,
                  "meaning": _NAMES}, required=("name",))
_TRIPLE = list_of(number(), min_len=3, max_len=3)

#: Every field a sidecar may hold, with its type; free-form report figures are any JSON.
SIDECAR_SCHEMA = record({
    "format": const(SIDECAR_FORMAT),
    "format_version": integer(1, SIDECAR_VERSION),
    "sam2ms_version": _NAMES,
    "artifact": file_name(),
    "sha256": SHA256,
    "size_bytes": integer(0),
    "kind": string(("onnx", "tensorrt-plan")),
    "model": _NAMES,
    "tile": integer(1, MAX_TILE),
    "precision": string(("fp32", "fp16", "bf16", "int8")),
    "input_format": string(INPUT_FORMATS),
    "inputs": list_of(_TENSOR, max_len=16),
    "outputs": list_of(_TENSOR, max_len=16),
    "normalization": record({"mean": _TRIPLE, "std": list_of(number(lo=1e-12), min_len=3, max_len=3),
                             "input": _NAMES, "applied_by": _NAMES}),
    "radiometry": optional(record({
        "bands": optional(list_of(integer(1, 1 << 16), min_len=1, max_len=3)),
        "stretch": string(STRETCHES),
        "percentiles": list_of(number(0, 100), min_len=2, max_len=2),
        "low": optional(list_of(number(), min_len=1, max_len=3)),
        "high": optional(list_of(number(), min_len=1, max_len=3))})),
    "checkpoint": record({"path": _NAMES, "sha256": SHA256, "kind": _NAMES}),
    "opset": integer(1, 1000),
    "exporter": _NAMES,
    "onnx_nodes": optional(record({"exported": integer(0), "slim": integer(0)})),
    "kept_fp32_ops": list_of(_NAMES),
    "parity": optional(_CHECK),
    "parity_of_source_onnx": optional(_CHECK),
    "accuracy_vs_fp32": optional(_CHECK),
    "openvino": record({"version": _NAMES, "device": _NAMES, "fp32": _GATE, "bf16": _GATE}),
    "source_onnx": _FILE_REF,
    "onnx": _FILE_REF,
    "calibration": record({"weight_bits": integer(7, 8), "cache": optional(file_name())}, other=_FIGURES),
    "builder": _builder,
    "builder_version": _NAMES,
    "targets": list_of(_NAMES, max_len=64),
    "batch_profile": list_of(integer(1), min_len=1, max_len=3),
    "profiles": integer(1, 1024),
    "workspace_bytes": integer(0),
    "timing_cache": _NAMES,
    "build_seconds": number(0),
}, required=("format", "format_version", "artifact", "sha256", "size_bytes", "tile", "precision"))

#: The largest sidecar read (a calibration with every trial of its search is ~100 KB).
MAX_SIDECAR_BYTES = 16 << 20


def file_in_folder(artifact: str | Path, name: str, what: str) -> Path:
    """``name`` (a plain file name a sidecar gives) as a file beside ``artifact``; a UsageError when
    it resolves outside the artifact's folder (a symlink out)."""
    folder = Path(artifact).resolve().parent
    candidate = folder / name
    if candidate.resolve().parent != folder:
        raise UsageError(f"{sidecar_path(artifact)}: {what} {name!r} is a link out of the model's folder "
                         f"({candidate.resolve()}); copy the file into the folder instead")
    return candidate


def read_sidecar(artifact: str | Path) -> dict[str, Any]:
    """The sidecar of ``artifact``, checked: every field by :data:`SIDECAR_SCHEMA`, and the
    artifact against it (size always, SHA-256 once per version of the file: :mod:`sam2ms.digests`)."""
    path = sidecar_path(artifact)
    if not path.is_file():
        raise UsageError(f"{artifact}: no sidecar ({path.name} beside it); export with sam2ms-export, which "
                         "writes one, and keep it with the artifact")
    fix = "re-export the model"
    data = load_json(path, str(path), fix, MAX_SIDECAR_BYTES)
    if isinstance(data, dict) and data.get("format") == SIDECAR_FORMAT and isinstance(data.get("format_version"), int) \
            and not isinstance(data["format_version"], bool) and data["format_version"] > SIDECAR_VERSION:
        raise UsageError(f"{path}: sidecar format {data['format_version']} is newer than this sam2ms reads; "
                         "upgrade sam2ms")
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise UsageError(f"{path}: not a {SIDECAR_FORMAT} file; {fix}")
    data = validate(data, SIDECAR_SCHEMA, str(path), fix)
    size = Path(artifact).stat().st_size
    if size != data["size_bytes"]:
        raise UsageError(f"{artifact}: {size} bytes, but its sidecar describes a file of {data['size_bytes']} bytes: "
                         f"{path.name} belongs to another file; re-export, or keep each sidecar with its artifact")
    if cached_sha256(artifact) != data["sha256"]:
        raise UsageError(f"{artifact}: its SHA-256 is not the one its sidecar records ({data['sha256'][:12]}…): "
                         f"{path.name} belongs to another file (or the file changed); re-export, or keep each "
                         "sidecar with its artifact")
    return cast("dict[str, Any]", data)


@dataclass(frozen=True)
class Sidecar:
    """A sidecar's fields as the readers use them; ``data`` keeps everything it holds."""

    data: dict[str, Any]

    @classmethod
    def read(cls, artifact: str | Path) -> Sidecar:
        return cls(read_sidecar(artifact))

    @property
    def tile(self) -> int:
        return int(self.data["tile"])

    @property
    def precision(self) -> str:
        return str(self.data["precision"])

    @property
    def input_format(self) -> str:
        """``uint8`` or ``float32``; sidecars from before the uint8 input say nothing: float32."""
        return str(self.data.get("input_format", "float32"))

    @property
    def builder(self) -> str | None:
        """The TensorRT library a plan was built with (one of :data:`~sam2ms.deps.TENSORRT_FLAVOURS`)."""
        return self.data.get("builder")

    def checks(self) -> dict[str, dict[str, Any]]:
        """The checks recorded (parity, parity of a plan's source ONNX, INT8 accuracy)."""
        return {name: self.data[name] for name in CHECKS if isinstance(self.data.get(name), dict)}

    def verdict(self) -> list[str]:
        """One sentence per recorded check that failed (empty: deployable)."""
        return [CHECKS[name].format("; ".join(check.get("failures", [])) or "no details")
                for name, check in self.checks().items() if check.get("passed") is False]

    @property
    def passed(self) -> bool | None:
        """True/False by :meth:`verdict`; None when nothing was checked."""
        return None if not self.checks() else not self.verdict()
