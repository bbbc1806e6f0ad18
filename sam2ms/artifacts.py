"""The artifact contract: what an exported file is, how it was checked, and one verdict on it.

Every artifact (``model.onnx``, ``model.fp16.onnx``, ``model.int8.onnx``, ``engine.plan``) has a
JSON sidecar beside it (``<artifact>.json``). Export and calibration write it; the runtime reads it
(without torch) and refuses an artifact whose sidecar contradicts what it is asked to do or whose
checks failed; the benchmark measures such an artifact anyway and marks it. The thresholds and
verdicts that decide "failed" are :mod:`sam2ms.accuracy`'s; this module records them.

Sidecars travel with their artifacts and may come from anyone (a colleague's folder, a download),
so reading one is reading untrusted data: one schema (:data:`SIDECAR_SCHEMA`) checks every field's
type, range and nesting; names in it are looked up in fixed tables (the TensorRT library) or
resolved inside the artifact's own folder (:func:`file_in_folder`); and the sidecar binds its
artifact by size and SHA-256 (:func:`read_sidecar`), so a sidecar copied beside another file is
refused instead of vouching for it.

numpy only: deployment hosts import this.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from . import __version__
from .accuracy import Verdict
from .deps import TENSORRT_FLAVOURS
from .digests import cached_sha256
from .errors import UsageError
from .fileio import write_json
from .geo.radiometry import STRETCHES
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, INPUT_FORMATS, MAX_TILE, graph_io
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


#: The checks a sidecar can record, and what a failure of each means for a deployment.
CHECKS = {
    "parity": "its export failed the parity check against PyTorch ({}); re-export before deploying it",
    "parity_of_source_onnx": "it was built from an ONNX that failed its parity check against PyTorch ({}); "
    "re-export before deploying it",
    "accuracy_vs_fp32": "INT8 missed its accuracy target against FP32 ({}); recalibrate with --auto-exclude, "
    "or deploy FP16",
}


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
    data = {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "sam2ms_version": __version__,
        "artifact": artifact.name,
        "sha256": cached_sha256(artifact),
        "size_bytes": artifact.stat().st_size,
        **fields,
    }
    # held to the schema its readers apply, so a writer's slip fails here, not on a user's host
    validate(data, SIDECAR_SCHEMA, str(sidecar_path(artifact)), "this is a bug in sam2ms: please report it")
    return write_json(sidecar_path(artifact), data)


def _builder(value: Any, where: str) -> str:
    """The TensorRT library a plan was built with: a name looked up in a fixed table, never imported
    as given.
    """
    if value not in TENSORRT_FLAVOURS:
        shown = repr(value[:40]) if isinstance(value, str) else describe(value)
        raise SchemaError(where, f"unknown builder {shown}: expected one of {', '.join(TENSORRT_FLAVOURS)}")
    return str(value)


_NAMES = string(max_len=4096)
_FIGURES = json_value()
#: A recorded check (parity, INT8 accuracy, an OpenVINO gate): its verdict typed, figures free-form.
_CHECK = record({"passed": boolean(), "failures": list_of(_NAMES)}, required=("passed",), other=_FIGURES)
_GATE = record(
    {
        "passed": optional(boolean()),
        "failures": list_of(_NAMES),
        "reference": _NAMES,
        "measured": boolean(),
        "why": _NAMES,
    },
    other=_FIGURES,
)
_FILE_REF = record({"file": file_name(), "sha256": optional(SHA256)}, required=("file",))
_DIM = either(integer(0), string(max_len=64), expected="a dimension (a size or a name)")
_TENSOR = record(
    {"name": _NAMES, "shape": list_of(_DIM, max_len=8), "dtype": _NAMES, "meaning": _NAMES}, required=("name",)
)
_TRIPLE = list_of(number(), min_len=3, max_len=3)

#: Every field a sidecar may hold, with its type; free-form report figures are any JSON.
SIDECAR_SCHEMA = record(
    {
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
        "normalization": record(
            {
                "mean": _TRIPLE,
                "std": list_of(number(lo=1e-12), min_len=3, max_len=3),
                "input": _NAMES,
                "applied_by": _NAMES,
            }
        ),
        "radiometry": optional(
            record(
                {
                    "bands": optional(list_of(integer(1, 1 << 16), min_len=1, max_len=3)),
                    "stretch": string(STRETCHES),
                    "percentiles": list_of(number(0, 100), min_len=2, max_len=2),
                    "low": optional(list_of(number(), min_len=1, max_len=3)),
                    "high": optional(list_of(number(), min_len=1, max_len=3)),
                }
            )
        ),
        "checkpoint": record({"path": _NAMES, "sha256": SHA256, "kind": _NAMES}),
        "opset": integer(1, 1000),
        "exporter": _NAMES,
        "onnx_nodes": optional(record({"exported": integer(0), "slim": integer(0)})),
        "kept_fp32_ops": list_of(_NAMES),
        "parity": optional(_CHECK),
        "parity_of_source_onnx": optional(_CHECK),
        "accuracy_vs_fp32": optional(_CHECK),
        "openvino": record({"version": _NAMES, "device": _NAMES, "fp32": _GATE, "bf16": _GATE}),
        "deepness": record(
            {
                "metadata": record({}, other=string(max_len=4096)),
                "resolution_from": _NAMES,
                "vs_model_onnx": optional(_CHECK),
            }
        ),
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
    },
    required=("format", "format_version", "artifact", "sha256", "size_bytes", "tile", "precision"),
)

#: The largest sidecar read (a calibration with every trial of its search is ~100 KB).
MAX_SIDECAR_BYTES = 16 << 20


def file_in_folder(artifact: str | Path, name: str, what: str) -> Path:
    """``name`` (a plain file name a sidecar gives) as a file beside ``artifact``; a UsageError when
    it resolves outside the artifact's folder (a symlink out).
    """
    folder = Path(artifact).resolve().parent
    candidate = folder / name
    if candidate.resolve().parent != folder:
        raise UsageError(
            f"{sidecar_path(artifact)}: {what} {name!r} is a link out of the model's folder "
            f"({candidate.resolve()}); copy the file into the folder instead"
        )
    return candidate


def read_sidecar(artifact: str | Path) -> dict[str, Any]:
    """The sidecar of ``artifact``, checked: every field by :data:`SIDECAR_SCHEMA`, and the
    artifact against it (size always, SHA-256 once per version of the file: :mod:`sam2ms.digests`).
    """
    path = sidecar_path(artifact)
    if not path.is_file():
        raise UsageError(
            f"{artifact}: no sidecar ({path.name} beside it); export with sam2ms-export, which "
            "writes one, and keep it with the artifact"
        )
    fix = "re-export the model"
    data = load_json(path, str(path), fix, MAX_SIDECAR_BYTES)
    if (
        isinstance(data, dict)
        and data.get("format") == SIDECAR_FORMAT
        and isinstance(data.get("format_version"), int)
        and not isinstance(data["format_version"], bool)
        and data["format_version"] > SIDECAR_VERSION
    ):
        raise UsageError(
            f"{path}: sidecar format {data['format_version']} is newer than this sam2ms reads; upgrade sam2ms"
        )
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise UsageError(f"{path}: not a {SIDECAR_FORMAT} file; {fix}")
    data = validate(data, SIDECAR_SCHEMA, str(path), fix)
    size = Path(artifact).stat().st_size
    if size != data["size_bytes"]:
        raise UsageError(
            f"{artifact}: {size} bytes, but its sidecar describes a file of {data['size_bytes']} bytes: "
            f"{path.name} belongs to another file; re-export, or keep each sidecar with its artifact"
        )
    if cached_sha256(artifact) != data["sha256"]:
        raise UsageError(
            f"{artifact}: its SHA-256 is not the one its sidecar records ({data['sha256'][:12]}…): "
            f"{path.name} belongs to another file (or the file changed); re-export, or keep each "
            "sidecar with its artifact"
        )
    return cast("dict[str, Any]", data)


@dataclass(frozen=True)
class Sidecar:
    """A sidecar's fields as the readers use them; ``data`` keeps everything it holds."""

    data: dict[str, Any]

    @classmethod
    def read(cls, artifact: str | Path) -> Sidecar:
        """The checked sidecar of ``artifact`` (:func:`read_sidecar`)."""
        return cls(read_sidecar(artifact))

    @property
    def tile(self) -> int:
        """The tile size the artifact was exported for."""
        return int(self.data["tile"])

    @property
    def precision(self) -> str:
        """The precision of the artifact's weights and arithmetic (fp32, fp16, bf16, int8)."""
        return str(self.data["precision"])

    @property
    def input_format(self) -> str:
        """``uint8`` or ``float32``; sidecars from before the uint8 input say nothing: float32."""
        return str(self.data.get("input_format", "float32"))

    def tensors(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(input, output) records of the graph: as recorded, or, for a sidecar from before they
        were, as every export names and shapes them (:func:`sam2ms.preprocess.graph_io`).
        """
        io = graph_io(self.tile, self.input_format)
        return (self.data.get("inputs") or io["inputs"])[0], (self.data.get("outputs") or io["outputs"])[0]

    @property
    def builder(self) -> str | None:
        """The TensorRT library a plan was built with (one of :data:`~sam2ms.deps.TENSORRT_FLAVOURS`)."""
        return self.data.get("builder")

    def checks(self) -> dict[str, Verdict]:
        """The checks recorded (parity, parity of a plan's source ONNX, INT8 accuracy)."""
        return {name: Verdict.from_json(self.data[name]) for name in CHECKS if isinstance(self.data.get(name), dict)}

    def verdict(self) -> list[str]:
        """One sentence per recorded check that failed (empty: deployable)."""
        return [
            CHECKS[name].format("; ".join(check.failures) or "no details")
            for name, check in self.checks().items()
            if check.passed is False
        ]

    @property
    def passed(self) -> bool | None:
        """True/False by :meth:`verdict`; None when nothing was checked."""
        return None if not self.checks() else not self.verdict()
