"""Open a model file with the right backend, checking it against its sidecar.

``.plan`` -> TensorRT (sidecar required), ``.onnx`` -> ONNX Runtime, ``.pt``/``.pth`` -> PyTorch
reference. A request that contradicts the sidecar (tile size, normalisation, backend) is refused
with a message that says why, instead of producing silently wrong masks.
"""

from __future__ import annotations

from pathlib import Path

from sam2ms.errors import UsageError
from sam2ms.export.sidecar import read_sidecar, sidecar_path
from sam2ms.preprocess import IMAGENET_MEAN, IMAGENET_STD

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
    if allow_failed:  # benchmarks measure failed artefacts too, with their accuracy beside
        return int(side["tile"])
    if side.get("parity") and side["parity"].get("passed") is False:
        raise UsageError(f"{path}: its export failed the parity check against PyTorch "
                         f"({'; '.join(side['parity'].get('failures', []))}); re-export before deploying it")
    int8 = side.get("accuracy_vs_fp32") or (side.get("parity_of_source_onnx") if side.get("precision") == "int8"
                                            else None)
    if int8 and int8.get("passed") is False:
        raise UsageError(f"{path}: INT8 missed its accuracy target against FP32 "
                         f"({'; '.join(int8.get('failures', []))}); recalibrate with --auto-exclude, or deploy FP16")
    return int(side["tile"])


def open_model(path: str | Path, backend: str = "auto", *, providers: list[str] | None = None,
               tile: int | None = None, threads: int | None = None, allow_failed: bool = False) -> Backend:
    """Load ``path`` with ``backend`` (auto: by file suffix). Artefacts whose export checks failed
    are refused unless ``allow_failed`` (the benchmark, which reports their accuracy)."""
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
    if chosen == "tensorrt":
        from .tensorrt_backend import TensorRTBackend

        side = read_sidecar(path)
        t = _check_sidecar(path, side, tile, allow_failed)
        return TensorRTBackend(path, ModelInfo(str(path), "tensorrt-plan", t, side.get("precision", "?"),
                                               sidecar=side))
    if chosen == "onnxruntime":
        from .onnxruntime_backend import OnnxRuntimeBackend, onnx_graph_tile

        if sidecar_path(path).is_file():
            side = read_sidecar(path)
            t = _check_sidecar(path, side, tile, allow_failed)
        else:
            side, t = {}, tile or onnx_graph_tile(path)
            if t is None:
                raise UsageError(f"{path}: the graph has no fixed tile size and no sidecar; pass --tile")
        info = ModelInfo(str(path), "onnx", t, side.get("precision", "fp32"), sidecar=side)
        return OnnxRuntimeBackend(path, info, providers, threads)
    from .torch_backend import TorchBackend

    return TorchBackend(path, tile)
