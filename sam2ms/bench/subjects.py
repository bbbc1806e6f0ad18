"""What a benchmark measures: the artifacts given, then the PyTorch reference variants of the
checkpoint they were exported from (found through their sidecars), at the artifacts' tile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sam2ms.artifacts import read_sidecar, sidecar_path
from sam2ms.digests import cached_sha256
from sam2ms.errors import UsageError

from .options import TorchVariant

if TYPE_CHECKING:
    from .options import BenchOptions


@dataclass
class Subject:
    """Something the benchmark opens as a backend: an artifact on one backend, or a PyTorch variant."""

    label: str
    open: Callable[[], Any]  # -> Backend
    reference: bool = False  # the eager FP32 PyTorch row every ratio refers to


def synthetic_tiles(tile: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded synthetic road tiles at training scale: (N x T x T x 3 uint8 RGB, N x T x T labels).
    Each subject gets them in its own input format (:func:`sam2ms.preprocess.model_input`).
    """
    from sam2ms.data.synth import render_road_scene

    rng = np.random.default_rng([seed, tile, 77])
    pairs = [render_road_scene(tile, tile, rng, scale=tile / 256) for _ in range(count)]
    return np.stack([img for img, _ in pairs]), np.stack([lab for _, lab in pairs])


def reference_checkpoint(opts: BenchOptions) -> Path | None:
    """--reference, else the checkpoint a model's sidecar names (when it still exists)."""
    if opts.reference is not None:
        if not opts.reference.is_file():
            raise UsageError(f"--reference {opts.reference}: checkpoint not found")
        return opts.reference
    for model in opts.models:
        if model.suffix == ".pt" and model.is_file():
            return model
        if sidecar_path(model).is_file():
            found = find_checkpoint(model, read_sidecar(model).get("checkpoint") or {})
            if found is not None:
                return found
    return None


def find_checkpoint(model: Path, recorded: dict[str, Any]) -> Path | None:
    """The checkpoint a sidecar names: its path as recorded (often relative to where the export
    ran), else that path under each folder above the artifact — accepted only when its SHA-256 is
    the recorded one, so a different file of the same name (or any other file a sidecar points
    at) is never loaded as the reference.
    """
    path, digest = recorded.get("path"), recorded.get("sha256")
    if not path or not digest:
        return None
    candidates = [Path(path)] + ([] if Path(path).is_absolute() else [f / path for f in model.resolve().parents])
    return next((c for c in candidates if c.is_file() and cached_sha256(c) == digest), None)


def _backends_for(model: Path, asked: list[str]) -> list[str]:
    """The backends to run ``model`` on: those asked that run its kind; ``auto``: every installed one."""
    from importlib.util import find_spec

    kind = {".plan": "tensorrt", ".engine": "tensorrt"}.get(model.suffix.lower(), "onnxruntime")
    if asked != ["auto"]:
        runs = {"tensorrt": ["tensorrt"], "onnxruntime": ["onnxruntime", "openvino"]}[kind]
        return [b for b in asked if b in runs] or [asked[0]]  # a mismatch is refused by open_model
    if kind == "onnxruntime" and find_spec("openvino") is not None:
        return ["onnxruntime", "openvino"]
    return [kind]


def preflight(opts: BenchOptions) -> None:
    """What would otherwise abort a benchmark after minutes of measuring, refused before it starts
    (exit 2): a model file that is missing or of no known kind, a sidecar that does not check out,
    an asked batch outside a plan's optimisation profile (from its sidecar).
    """
    from sam2ms.artifacts import Sidecar
    from sam2ms.runtime.backends import MODEL_SUFFIXES

    for model in opts.models:
        if not model.is_file():
            raise UsageError(f"{model}: model file not found")
        if model.suffix.lower() not in MODEL_SUFFIXES:
            raise UsageError(
                f"{model}: unknown model kind {model.suffix!r}; pass a .plan (with its .json sidecar), "
                "an .onnx or a .pt checkpoint"
            )
        if model.suffix.lower() in (".plan", ".engine"):
            low, *_, high = Sidecar.read(model).data.get("batch_profile") or [1, None]
            outside = [b for b in opts.batches if b < low or (high is not None and b > high)]
            if outside:
                raise UsageError(
                    f"--batch {outside[0]}: {model.name} was built for batches {low}..{high} (its "
                    f"optimisation profile); choose batches in that range or rebuild with "
                    f"sam2ms-export --batch 1:{outside[0]}:{max(opts.batches)}"
                )


def cannot_run_here(backend: str) -> str | None:
    """Why this host cannot run ``backend`` at all (its library, or for TensorRT a CUDA device),
    else None: such a subject becomes a row marked "not run here", not an abort.
    """
    from importlib.util import find_spec

    from sam2ms.deps import INSTALL

    if backend == "tensorrt":
        from sam2ms.runtime.cuda import device_status

        if find_spec("tensorrt") is None and find_spec("tensorrt_rtx") is None:
            return f"no TensorRT here: {INSTALL['tensorrt']} or {INSTALL['tensorrt_rtx']}"
        devices, why = device_status()
        return None if devices else f"needs an NVIDIA GPU ({why})"
    module = {"onnxruntime": "onnxruntime", "openvino": "openvino"}.get(backend)
    if module and find_spec(module) is None:
        return f"no {module} here: {INSTALL[module]}"
    return None


def _openvino_has_bf16() -> bool:
    from sam2ms.deps import require
    from sam2ms.runtime.backends.openvino_backend import native_bf16

    return native_bf16(require("openvino", "--backend openvino").Core())


def torch_variants(asked: list[str]) -> list[str]:
    """``auto``: FP32 and the fastest configurations PyTorch offers here: bf16 autocast on CPUs
    with native BF16 (AVX-512 BF16, AMX), fp16 and bf16 autocast on GPUs and bf16 replayed from
    CUDA graphs, torch.compile.
    """
    if asked != ["auto"]:
        return list(dict.fromkeys(["fp32", *asked]))
    import torch

    from sam2ms.runtime.backends.base import cpu_has_native_bf16

    if torch.cuda.is_available():
        return ["fp32", "fp16", "bf16", "bf16+graph", "compile"]
    return ["fp32", *(["bf16"] if cpu_has_native_bf16() else []), "compile"]


def subjects(opts: BenchOptions) -> tuple[list[Subject], list[dict[str, str]]]:
    """The artifacts to measure on each backend asked (OpenVINO at each precision this CPU runs
    natively), then the PyTorch reference variants (when torch and a checkpoint are there); and
    the subjects left out, with why.
    """
    from sam2ms.runtime.backends import BackendOptions, open_model

    found, skipped = [], []
    # artifacts are measured whatever their checks said (the report marks them)
    measured = BackendOptions(threads=opts.threads, allow_failed=True, unverified=opts.unverified)
    for m in (m for m in opts.models if m.suffix != ".pt"):
        for backend in _backends_for(m, opts.backend.split(",")):
            why = cannot_run_here(backend)
            if why is not None:
                skipped.append({"subject": m.name if backend != "openvino" else f"{m.name} (openvino)", "why": why})
                continue
            if backend != "openvino":
                found.append(
                    Subject(
                        m.name,
                        partial(open_model, m, backend, replace(measured, eager_kernels=True)),
                    )
                )
                continue
            for precision in opts.openvino_precisions:
                label = f"{m.name} (openvino{' bf16' if precision == 'bf16' else ''})"  # fp32: the file's own
                if precision == "bf16" and not _openvino_has_bf16():  # the backend's own test: it would refuse
                    skipped.append({"subject": label, "why": "this CPU has no native BF16"})
                    continue
                found.append(
                    Subject(
                        label,
                        partial(open_model, m, "openvino", replace(measured, precision=precision)),
                    )
                )
    if opts.cuda_graph and cannot_run_here("tensorrt") is None:  # each plan twice: plain, and from a CUDA graph
        found += [
            Subject(
                f"{m.name} (CUDA graph)",
                partial(
                    open_model, m, "tensorrt", BackendOptions(allow_failed=True, eager_kernels=True, cuda_graph=True)
                ),
            )
            for m in opts.models
            if m.suffix in (".plan", ".engine")
        ]
    ckpt = reference_checkpoint(opts)
    try:
        import torch  # noqa: F401
    except ImportError:
        ckpt = None
    if ckpt is not None:
        tile = artifact_tile(opts.models)
        for variant in map(TorchVariant.parse, torch_variants(opts.torch_variants)):
            found.append(
                Subject(
                    variant.label,
                    partial(open_model, ckpt, "torch", variant.backend_options(tile)),
                    reference=variant == TorchVariant(),
                )
            )
    return found, skipped


def artifact_tile(models: list[Path]) -> int | None:
    """The tile of the first exported artifact: the PyTorch reference runs at it, whatever size the
    checkpoint was trained at (the authors train at 352 px and deploy at 1024 px).
    """
    from sam2ms.runtime.backends.onnxruntime_backend import onnx_graph_tile

    for model in models:
        if model.suffix == ".pt" or not model.is_file():
            continue
        if sidecar_path(model).is_file():
            return int(read_sidecar(model)["tile"])
        if model.suffix == ".onnx":
            return onnx_graph_tile(model)
    return None
