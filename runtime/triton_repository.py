"""``sam2ms triton ARTIFACT -o REPO``: one exported artifact as a Triton Inference Server model
repository, ``REPO/NAME/config.pbtxt`` and ``REPO/NAME/1/model.onnx`` (or ``model.plan``) with the
artifact's sidecar beside it.

Everything in the configuration comes from the sidecar (read and checked like any artifact's, so a
failed or foreign artifact is refused): the platform (``onnxruntime_onnx`` / ``tensorrt_plan``),
the input and output names, dtypes and dims (without the batch dimension: ``max_batch_size`` > 0
makes it implicit), ``max_batch_size`` and the dynamic batcher's preferred sizes from the batch
profile (a plan's own ``batch_profile``; an ONNX, which has none, the export's default 1:4:8),
``instance_group`` (count = the streams one server should run), and for an ONNX on a GPU the
TensorRT accelerator in the precision its checks vouch for (FP16 only for an FP16 file whose parity
passed). The artifact's SHA-256 goes into the configuration's parameters, so that
``sam2ms-infer --triton`` can tell that the served model is the file it was given.

Written with the standard library (the text format is plain), so the deployment host needs no
Triton package; the tests parse it with ``tritonclient``'s own ``model_config_pb2``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from sam2ms.artifacts import Sidecar, sidecar_path
from sam2ms.errors import UsageError

from .backends import check_sidecar
from .backends.triton_backend import SHA256_PARAMETER, WIRE_TYPES

PLATFORMS = {"onnx": "onnxruntime_onnx", "tensorrt-plan": "tensorrt_plan"}
FILES = {"onnx": "model.onnx", "tensorrt-plan": "model.plan"}
#: The export's default batch profile (``sam2ms-export --batch 1:4:8``), for an ONNX, which has none.
ONNX_PROFILE = (1, 4, 8)
#: How long the dynamic batcher may hold a request to fill a preferred batch (a 1024² tile takes
#: milliseconds on a GPU: 100 µs costs nothing and lets concurrent lanes' requests meet).
MAX_QUEUE_DELAY_US = 100
DEVICES = ("gpu", "cpu")


@dataclass(frozen=True)
class TritonTensor:
    """One input or output as Triton's configuration declares it (dims without the batch)."""

    name: str
    data_type: str
    dims: tuple[int, ...]

    def to_pbtxt(self) -> str:
        """The tensor as one entry of ``input [...]`` / ``output [...]``."""
        dims = ", ".join(str(d) for d in self.dims)
        return f'  {{\n    name: "{self.name}"\n    data_type: {self.data_type}\n    dims: [ {dims} ]\n  }}'


@dataclass(frozen=True)
class TritonModel:
    """A model's ``config.pbtxt``, built from an artifact's sidecar (:func:`triton_model`)."""

    name: str
    platform: str
    inputs: tuple[TritonTensor, ...]
    outputs: tuple[TritonTensor, ...]
    max_batch_size: int
    preferred_batch_sizes: tuple[int, ...]
    instances: int
    kind: str  # KIND_GPU | KIND_CPU
    sha256: str
    accelerator_precision: str | None = None  # ONNX on a GPU: TensorRT's precision_mode
    source: dict[str, Any] = field(default_factory=dict)  # what the summary reports

    def to_pbtxt(self) -> str:
        """The configuration in Triton's protobuf text format."""
        lines = [
            f'name: "{self.name}"',
            f'platform: "{self.platform}"',
            f"max_batch_size: {self.max_batch_size}",
            "input [\n" + ",\n".join(t.to_pbtxt() for t in self.inputs) + "\n]",
            "output [\n" + ",\n".join(t.to_pbtxt() for t in self.outputs) + "\n]",
            "dynamic_batching {\n"
            f"  preferred_batch_size: [ {', '.join(map(str, self.preferred_batch_sizes))} ]\n"
            f"  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}\n"
            "}",
            f"instance_group [\n  {{\n    count: {self.instances}\n    kind: {self.kind}\n  }}\n]",
        ]
        if self.accelerator_precision is not None:
            lines.append(
                "optimization {\n  execution_accelerators {\n    gpu_execution_accelerator: [\n      {\n"
                '        name: "tensorrt"\n'
                f'        parameters {{ key: "precision_mode" value: "{self.accelerator_precision}" }}\n'
                '        parameters { key: "trt_engine_cache_enable" value: "1" }\n'
                "      }\n    ]\n  }\n}"
            )
        lines.append(f'parameters {{\n  key: "{SHA256_PARAMETER}"\n  value: {{ string_value: "{self.sha256}" }}\n}}')
        return "\n".join(lines) + "\n"


def _tensor(record: dict[str, Any]) -> TritonTensor:
    """A sidecar's tensor as Triton's: the leading batch dimension dropped, the name kept."""
    shape = record.get("shape") or []
    dims = shape[1:]
    if not shape or not all(isinstance(d, int) for d in dims):
        raise UsageError(f"tensor {record.get('name')!r}: the sidecar gives no fixed shape ({shape}); re-export")
    return TritonTensor(str(record["name"]), "TYPE_" + WIRE_TYPES[str(record["dtype"])], tuple(dims))


def triton_model(
    artifact: Path, name: str, max_batch: int | None = None, instances: int = 1, device: str = "gpu"
) -> TritonModel:
    """The configuration for ``artifact``, from its sidecar (read and judged as the runtime judges
    it, without loading the model: a failed, foreign or Deepness artifact is refused).
    """
    if device not in DEVICES:
        raise UsageError(f"--device {device}: use one of {', '.join(DEVICES)}")
    if instances < 1:
        raise UsageError(f"--instances {instances}: at least 1")
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise UsageError(f"--name {name!r}: letters, digits, '-', '_' and '.' only (a folder of the repository)")
    if not artifact.is_file():
        raise UsageError(f"{artifact}: model file not found")
    if artifact.suffix.lower() not in (".onnx", ".plan", ".engine"):
        raise UsageError(f"{artifact}: Triton serves an exported .onnx or .plan (with its sidecar)")
    side = Sidecar.read(artifact)
    check_sidecar(artifact, side)  # what the runtime would refuse to run is not served either
    kind = str(side.data.get("kind") or ("tensorrt-plan" if artifact.suffix.lower() != ".onnx" else "onnx"))
    if kind == "tensorrt-plan" and device == "cpu":
        raise UsageError("--device cpu: a TensorRT plan runs on a GPU only; serve the .onnx on CPUs")
    low, opt, high = side.data.get("batch_profile") or ONNX_PROFILE
    if max_batch is not None and kind == "tensorrt-plan" and not low <= max_batch <= high:
        raise UsageError(f"--max-batch {max_batch}: the plan was built for batches {low} to {high}")
    most = max_batch or high
    if most < 1:
        raise UsageError(f"--max-batch {most}: at least 1")
    preferred = tuple(sorted({b for b in (opt, most) if 1 < b <= most})) or (most,)
    accelerator = None
    if kind == "onnx" and device == "gpu":
        accelerator = {"fp16": "FP16", "int8": "INT8"}.get(side.precision, "FP32")
    return TritonModel(
        name=name,
        platform=PLATFORMS[kind],
        inputs=(_tensor(side.tensors()[0]),),
        outputs=(_tensor(side.tensors()[1]),),
        max_batch_size=most,
        preferred_batch_sizes=preferred,
        instances=instances,
        kind="KIND_GPU" if device == "gpu" else "KIND_CPU",
        sha256=str(side.data["sha256"]),
        accelerator_precision=accelerator,
        source={"artifact": str(artifact), "precision": side.precision, "tile": side.tile},
    )


def write_repository(artifact: Path, repo: Path, model: TritonModel) -> Path:
    """``repo/NAME`` laid out for Triton, assembled beside it and renamed into place (an existing
    model folder is refused, never overwritten).
    """
    target = repo / model.name
    if target.exists():
        raise UsageError(f"{target}: exists; choose another --name or remove it first")
    repo.mkdir(parents=True, exist_ok=True)
    staging = repo / f".{model.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        version = staging / "1"
        version.mkdir(parents=True)
        served = version / FILES[_kind(model.platform)]
        shutil.copyfile(artifact, served)
        shutil.copyfile(sidecar_path(artifact), sidecar_path(served))
        (staging / "config.pbtxt").write_text(model.to_pbtxt())
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _kind(platform: str) -> str:
    return next(kind for kind, name in PLATFORMS.items() if name == platform)


def summary(model: TritonModel, target: Path) -> dict[str, Any]:
    """What ``sam2ms triton --json`` prints."""
    return {
        "repository": str(target.parent),
        "model": model.name,
        "folder": str(target),
        "platform": model.platform,
        "max_batch_size": model.max_batch_size,
        "preferred_batch_sizes": list(model.preferred_batch_sizes),
        "instances": model.instances,
        "kind": model.kind,
        "accelerator_precision": model.accelerator_precision,
        **model.source,
    }


def triton_command(
    artifact: Path = typer.Argument(
        ..., metavar="ARTIFACT", help="An exported model.onnx / engine.plan (with its sidecar)."
    ),
    output: Path = typer.Option(..., "-o", "--output", help="The model repository (created if needed)."),
    name: str = typer.Option("sam2ms", help="The model's name in the repository (its folder)."),
    max_batch: int | None = typer.Option(
        None, help="max_batch_size (default: the plan's batch profile maximum; 8 for an ONNX)."
    ),
    instances: int = typer.Option(1, help="Model instances per device (instance_group count: the streams)."),
    device: str = typer.Option("gpu", help="gpu | cpu (KIND_GPU with TensorRT for an ONNX, or KIND_CPU)."),
    as_json: bool = typer.Option(False, "--json", help="Print a machine-readable JSON summary on stdout."),
) -> None:
    """Lay out a Triton Inference Server model repository for an exported artifact."""
    import json

    model = triton_model(artifact, name, max_batch, instances, device)
    target = write_repository(artifact, output, model)
    report = summary(model, target)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(
        f"{target}: {model.platform}, max batch {model.max_batch_size} (preferred "
        f"{', '.join(map(str, model.preferred_batch_sizes))}), {model.instances} instance(s) {model.kind}"
        + (f", TensorRT {model.accelerator_precision}" if model.accelerator_precision else "")
    )
    typer.echo(f"next: tritonserver --model-repository {output}")
