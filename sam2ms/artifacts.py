"""The artifact contract: what an exported file is, how it was checked, and one verdict on it.

Every artifact (``model.onnx``, ``model.fp16.onnx``, ``model.int8.onnx``, ``engine.plan``) has a
JSON sidecar beside it (``<artifact>.json``). Export and calibration write it; the runtime reads it
(without torch) and refuses an artifact whose sidecar contradicts what it is asked to do or whose
checks failed; the benchmark measures such an artifact anyway and marks it. The thresholds that
decide "failed" live here too, so the writer and the readers cannot drift apart.

numpy only: deployment hosts import this.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import UsageError
from .fileio import read_format_json, write_json
from .metrics import agreement, probability_parity
from .preprocess import IMAGENET_MEAN, IMAGENET_STD

SIDECAR_FORMAT = "sam2ms-sidecar"
SIDECAR_VERSION = 1


@dataclass(frozen=True)
class Thresholds:
    """Parity pass criteria for one precision against the PyTorch FP32 reference."""

    max_abs: float | None
    min_mask_iou: float


#: Parity of an exported graph (ONNX Runtime) or a deployed model (``--check-against``) with PyTorch.
PARITY_THRESHOLDS = {
    "fp32": Thresholds(max_abs=1e-4, min_mask_iou=0.999),
    "fp16": Thresholds(max_abs=None, min_mask_iou=0.995),
    "bf16": Thresholds(max_abs=None, min_mask_iou=0.995),  # OpenVINO's BF16 inference: FP16's gate
}
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
    :data:`PARITY_THRESHOLDS` (an INT8 or unknown precision is held to the FP16 criteria)."""
    figures: dict[str, Any] = dict(probability_parity(reference, candidate))
    limits = PARITY_THRESHOLDS.get(precision, PARITY_THRESHOLDS["fp16"])
    failures = []
    if limits.max_abs is not None and figures["max_abs"] > limits.max_abs:
        failures.append(f"max abs diff {figures['max_abs']:.3g} > {limits.max_abs:g}")
    if figures["mask_iou"] < limits.min_mask_iou:
        failures.append(f"mask IoU {figures['mask_iou']:.5f} < {limits.min_mask_iou}")
    figures.update({"reference": "pytorch-fp32", "tiles": int(len(reference)),
                    "thresholds": {"max_abs": limits.max_abs, "min_mask_iou": limits.min_mask_iou},
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


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The file's SHA-256, read in chunks (checkpoints and plans run to gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_sidecar(artifact: str | Path, fields: dict[str, Any]) -> Path:
    """Write the sidecar of ``artifact`` (atomically), adding format, version and the file's hash."""
    artifact = Path(artifact)
    data = {"format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION, "sam2ms_version": __version__,
            "artifact": artifact.name, "sha256": sha256_file(artifact), "size_bytes": artifact.stat().st_size,
            **fields}
    return write_json(sidecar_path(artifact), data)


def read_sidecar(artifact: str | Path) -> dict[str, Any]:
    """Read and sanity-check the sidecar of ``artifact``."""
    path = sidecar_path(artifact)
    if not path.is_file():
        raise UsageError(f"{path}: sidecar not found; artifacts must keep the .json that sam2ms-export wrote "
                         "beside them")
    data = read_format_json(path, SIDECAR_FORMAT, str(path), "re-export the model")
    if data.get("format_version", 0) > SIDECAR_VERSION:
        raise UsageError(f"{path}: sidecar format {data['format_version']} is newer than this sam2ms reads; "
                         "upgrade sam2ms")
    return data


@dataclass(frozen=True)
class Sidecar:
    """A sidecar's fields as the readers use them; ``data`` keeps everything it holds."""

    data: dict[str, Any]

    @classmethod
    def read(cls, artifact: str | Path) -> Sidecar:
        return cls(read_sidecar(artifact))

    @property
    def tile(self) -> int | None:
        tile = self.data.get("tile")
        return int(tile) if tile is not None else None

    @property
    def precision(self) -> str:
        return str(self.data.get("precision", "fp32"))

    @property
    def input_format(self) -> str:
        """``uint8`` or ``float32``; sidecars from before the uint8 input say nothing: float32."""
        return str(self.data.get("input_format", "float32"))

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
