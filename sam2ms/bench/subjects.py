"""What a benchmark measures: the artifacts given, then the PyTorch reference variants of the
checkpoint they were exported from (found through their sidecars), at the artifacts' tile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sam2ms.artifacts import read_sidecar, sha256_file, sidecar_path
from sam2ms.errors import UsageError

if TYPE_CHECKING:
    from .runner import BenchOptions


@dataclass
class Subject:
    label: str
    open: Callable[[], Any]  # -> Backend
    reference: bool = False  # the eager FP32 PyTorch row every ratio refers to


def synthetic_tiles(tile: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded synthetic road tiles at training scale: (N x T x T x 3 uint8 RGB, N x T x T labels).
    Each subject gets them in its own input format (:func:`sam2ms.preprocess.model_input`)."""
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
    the recorded one, so a different file of the same name is never taken for the reference."""
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
    """The artifacts to measure, then the PyTorch reference variants (when torch and a checkpoint are there)."""
    from sam2ms.runtime.backends import open_model

    found = [Subject(m.name, partial(open_model, m, opts.backend, threads=opts.threads, allow_failed=True,
                                     eager_kernels=True))
             for m in opts.models if m.suffix != ".pt"]
    if opts.cuda_graph:  # each plan twice: plain enqueue, and replayed from a CUDA graph
        found += [Subject(f"{m.name} (CUDA graph)", partial(open_model, m, opts.backend, allow_failed=True,
                                                            eager_kernels=True, cuda_graph=True))
                  for m in opts.models if m.suffix in (".plan", ".engine")]
    ckpt = reference_checkpoint(opts)
    try:
        import torch  # noqa: F401
    except ImportError:
        ckpt = None
    if ckpt is not None:
        tile = artifact_tile(opts.models)
        if opts.threads:
            import torch

            torch.set_num_threads(opts.threads)
        for variant in dict.fromkeys(["fp32", *opts.torch_variants]):
            precision = "fp32" if variant == "compile" else variant
            label = f"pytorch {'compiled' if variant == 'compile' else 'eager'} {precision}"
            found.append(Subject(label, partial(open_model, ckpt, "torch", tile=tile, precision=precision,
                                                compile=variant == "compile"), reference=variant == "fp32"))
    return found


def artifact_tile(models: list[Path]) -> int | None:
    """The tile of the first exported artifact: the PyTorch reference runs at it, whatever size the
    checkpoint was trained at (the authors train at 352 px and deploy at 1024 px)."""
    from sam2ms.runtime.backends.onnxruntime_backend import onnx_graph_tile

    for model in models:
        if model.suffix == ".pt" or not model.is_file():
            continue
        if sidecar_path(model).is_file():
            return int(read_sidecar(model)["tile"])
        if model.suffix == ".onnx":
            return onnx_graph_tile(model)
    return None
