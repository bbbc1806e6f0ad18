"""Open a model file with the right backend, checking it against its sidecar.

``.plan`` -> TensorRT (sidecar required), ``.onnx`` -> ONNX Runtime, ``.pt``/``.pth`` -> PyTorch
reference. A request that contradicts the sidecar (tile size, normalisation, backend) is refused
with a message that says why, instead of producing silently wrong masks.
"""

from __future__ import annotations

from pathlib import Path

from sam2ms.errors import UsageError
from sam2ms.export.sidecar import failed_checks, read_sidecar, sidecar_path
from sam2ms.preprocess import IMAGENET_MEAN, IMAGENET_STD, INPUT_FORMATS

from .base import Backend, Lane, ModelInfo

BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")
_BY_SUFFIX = {".plan": "tensorrt", ".engine": "tensorrt", ".onnx": "onnxruntime", ".pt": "torch", ".pth": "torch"}

__all__ = ["BACKENDS", "Backend", "Lane", "ModelInfo", "open_model"]


def _check_sidecar(path: Path, side: dict, tile: int | None, allow_failed: bool = False) -> int:
    if side.get("tile") is None:
        raise UsageError(f"{sidecar_path(path)}: sidecar has no tile size; re-export the model")
    if tile is not None and tile != side["tile"]:
        raise UsageError(f"--tile {tile}: {path.name} was built for {side['tile']}px tiles (its sidecar says so); "
                         f"drop --tile or re-export with --tile {tile}")
    norm = side.get("normalization", {})
    if norm and (norm.get("mean") != list(IMAGENET_MEAN) or norm.get("std") != list(IMAGENET_STD)):
        raise UsageError(f"{sidecar_path(path)}: model expects normalisation {norm}, but this runtime feeds "
                         "ImageNet mean/std; re-export with this sam2ms")
    if side.get("input_format", "float32") not in INPUT_FORMATS:
        raise UsageError(f"{sidecar_path(path)}: input format {side['input_format']!r} is unknown to this sam2ms; "
                         "upgrade sam2ms or re-export")
    if allow_failed:  # benchmarks measure failed artefacts too, with their accuracy beside
        return int(side["tile"])
    failed = failed_checks(side)
    if failed:
        raise UsageError(f"{path}: " + "; ".join(failed))
    return int(side["tile"])


def open_model(path: str | Path, backend: str = "auto", *, providers: list[str] | None = None,
               tile: int | None = None, threads: int | None = None, allow_failed: bool = False,
               eager_kernels: bool = False, cuda_graph: bool = False) -> Backend:
    """Load ``path`` with ``backend`` (auto: by file suffix). Artefacts whose export checks failed
    are refused unless ``allow_failed`` (the benchmark, which reports their accuracy).
    ``eager_kernels`` (timed or compared runs) and ``cuda_graph`` apply to TensorRT plans."""
    path = Path(path)
    if backend not in BACKENDS:
        raise UsageError(f"--backend {backend}: use one of {', '.join(BACKENDS)}")
    if not path.is_file():
        raise UsageError(f"{path}: model file not found")
    natural = _BY_SUFFIX.get(path.suffix.lower())
    if natural is None:
        raise UsageError(f"{path}: unknown model kind {path.suffix!r}; pass a .plan (with its .json sidecar), "
                         "an .onnx or a .pt checkpoint")
    chosen = natural if backend == "auto" else backend
    if chosen != natural:
        raise UsageError(f"--backend {backend} cannot run {path.name}: {natural} runs {path.suffix} files")
    if cuda_graph and chosen != "tensorrt":
        raise UsageError(f"--cuda-graph: only TensorRT plans are captured into CUDA graphs, not {path.name}")
    if chosen == "torch":
        from .torch_backend import TorchBackend

        return TorchBackend(path, tile)
    if chosen == "onnxruntime" and not sidecar_path(path).is_file():
        from .onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, ModelInfo(str(path), "onnx", tile or 0, "fp32"), providers, threads)
    side = read_sidecar(path)
    info = ModelInfo(str(path), "tensorrt-plan" if chosen == "tensorrt" else "onnx",
                     _check_sidecar(path, side, tile, allow_failed), side.get("precision", "fp32"),
                     input_format=side.get("input_format", "float32"), sidecar=side)
    if chosen == "tensorrt":
        from .tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path, info, eager_kernels=eager_kernels, cuda_graph=cuda_graph)
    from .onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(path, info, providers, threads)
