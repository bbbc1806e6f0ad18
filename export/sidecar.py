"""JSON sidecars (``model.onnx.json``, ``engine.plan.json``): what an artefact is and how it was checked.

The runtime reads these (without torch) and refuses an artefact whose sidecar does not match
what it is asked to do, so every field a deployment depends on is written here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sam2ms import __version__
from sam2ms.errors import UsageError
from sam2ms.fileio import read_format_json, write_json

SIDECAR_FORMAT = "sam2ms-sidecar"
SIDECAR_VERSION = 1


def sidecar_path(artifact: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.json``."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
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
        raise UsageError(f"{path}: sidecar not found; artefacts must keep the .json that sam2ms-export wrote "
                         "beside them")
    data = read_format_json(path, SIDECAR_FORMAT, str(path), "re-export the model")
    if data.get("format_version", 0) > SIDECAR_VERSION:
        raise UsageError(f"{path}: sidecar format {data['format_version']} is newer than this sam2ms reads; "
                         "upgrade sam2ms")
    return data


#: The checks an export records in a sidecar, and what a failure of each means for a deployment.
CHECKS = {
    "parity": "its export failed the parity check against PyTorch ({}); re-export before deploying it",
    "parity_of_source_onnx": "it was built from an ONNX that failed its parity check against PyTorch ({}); "
                             "re-export before deploying it",
    "accuracy_vs_fp32": "INT8 missed its accuracy target against FP32 ({}); recalibrate with --auto-exclude, "
                        "or deploy FP16",
}


def recorded_checks(side: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The checks this sidecar records (parity, parity of a plan's source ONNX, INT8 accuracy)."""
    return {name: side[name] for name in CHECKS if isinstance(side.get(name), dict)}


def failed_checks(side: dict[str, Any]) -> list[str]:
    """One sentence per recorded check that failed — the single verdict the runtime (which refuses
    such an artefact) and the benchmark (which measures and marks it) both use."""
    return [CHECKS[name].format("; ".join(check.get("failures", [])) or "no details")
            for name, check in recorded_checks(side).items() if check.get("passed") is False]
