"""Open a model file with the right backend, checking it against its sidecar.

``.plan`` -> TensorRT (sidecar required), ``.onnx`` -> ONNX Runtime or OpenVINO, ``.pt``/``.pth``
-> PyTorch reference. ``auto`` runs an FP32/FP16 ``.onnx`` on OpenVINO on x86-64 CPUs where it is
installed (faster than ONNX Runtime on every CPU measured: AVX2 and AVX-512 BF16), and whenever
BF16 is asked for; INT8 files, other CPUs and GPU providers on ONNX Runtime. A request that
contradicts the sidecar (tile size, normalisation, backend, a precision whose accuracy gate
failed) is refused with a message that says why, instead of producing silently wrong masks.
"""

from __future__ import annotations

import platform
from pathlib import Path

from sam2ms.artifacts import Sidecar, sidecar_path
from sam2ms.errors import UsageError
from sam2ms.preprocess import IMAGENET_MEAN, IMAGENET_STD, INPUT_FORMATS

from .base import Backend, BackendOptions, Lane, ModelInfo, deepness_refusal

BACKENDS = ("auto", "tensorrt", "onnxruntime", "openvino", "torch", "triton")
_BY_SUFFIX = {".plan": "tensorrt", ".engine": "tensorrt", ".onnx": "onnxruntime", ".pt": "torch", ".pth": "torch"}
MODEL_SUFFIXES = tuple(_BY_SUFFIX)

__all__ = ["BACKENDS", "MODEL_SUFFIXES", "Backend", "BackendOptions", "Lane", "ModelInfo", "open_model"]


def check_sidecar(path: Path, side: Sidecar, tile: int | None = None, allow_failed: bool = False) -> int:
    """The artifact's tile, once its sidecar agrees with this runtime and the request; else why not
    (the runtime's one judgement of an artifact: ``open_model`` and ``sam2ms triton`` apply it).
    """
    if side.data.get("deepness"):
        raise UsageError(deepness_refusal(path))
    where = sidecar_path(path)
    if tile is not None and tile != side.tile:
        raise UsageError(
            f"--tile {tile}: {path.name} was built for {side.tile}px tiles (its sidecar says so); "
            f"drop --tile or re-export with --tile {tile}"
        )
    norm = side.data.get("normalization", {})
    if norm and (norm.get("mean") != list(IMAGENET_MEAN) or norm.get("std") != list(IMAGENET_STD)):
        raise UsageError(
            f"{where}: model expects normalisation {norm}, but this runtime feeds "
            "ImageNet mean/std; re-export with this sam2ms"
        )
    if side.input_format not in INPUT_FORMATS:
        raise UsageError(
            f"{where}: input format {side.input_format!r} is unknown to this sam2ms; upgrade sam2ms or re-export"
        )
    failed = side.verdict()
    if failed and not allow_failed:  # benchmarks measure failed artifacts too, with their accuracy beside
        raise UsageError(f"{path}: " + "; ".join(failed))
    return side.tile


def _auto_onnx_backend(providers: tuple[str, ...] | None, precision: str, file_precision: str) -> str:
    """OpenVINO for a CPU run where it is installed and either BF16 is asked for or the file is
    float on an x86-64 CPU (OpenVINO FP32 ran our graphs 1.1-1.3x faster than ONNX Runtime on Zen 3
    and Zen 5: benchmarks/RESULTS.md); else ONNX Runtime, which also serves --providers cuda/tensorrt
    and INT8 files (their calibration measured ONNX Runtime's INT8 kernels; OpenVINO's need their
    own gate: ``--backend openvino``). Decided without importing OpenVINO.
    """
    from importlib.util import find_spec

    cpu = not (providers and providers != ("cpu",))
    wants = precision == "bf16" or (file_precision != "int8" and platform.machine().lower() in ("x86_64", "amd64"))
    return "openvino" if cpu and wants and find_spec("openvino") is not None else "onnxruntime"


#: What each backend reads of :class:`BackendOptions` beyond what any may be given (the tile, CPU
#: threads, the kernels hint, the cache folder, allow_failed, unverified): a request for anything
#: else is refused by :func:`_refuse_unread`, never dropped in silence.
_READS = {
    "tensorrt": {"cuda_graph"},
    "onnxruntime": {"providers"},
    "openvino": {"precision", "device"},
    "torch": {"precision", "cuda_graph", "compile", "channels_last"},
    "triton": {"triton_url", "triton_model"},
}
_FLAGS = {
    "precision": "--precision",
    "device": "--device",
    "providers": "--providers",
    "cuda_graph": "--cuda-graph",
    "compile": "torch.compile",
    "channels_last": "channels-last",
    "triton_url": "--triton",
    "triton_model": "--model",
}


def _refuse_unread(opts: BackendOptions, chosen: str, path: Path) -> None:
    """A UsageError for an option ``chosen`` would not read (``--device GPU`` on a plan,
    ``--precision bf16`` on a plan, which runs the precision it was built with).
    """
    default = BackendOptions()
    for name, flag in _FLAGS.items():
        value = getattr(opts, name)
        if value == getattr(default, name) or name in _READS[chosen] or (name == "providers" and value == ("cpu",)):
            continue
        shown = ",".join(value) if isinstance(value, tuple) else ("" if isinstance(value, bool) else value)
        raise UsageError(f"{flag} {shown}".strip() + f": {chosen} does not take it ({path.name}); drop it")


def open_model(path: str | Path, backend: str = "auto", options: BackendOptions | None = None) -> Backend:
    """Load ``path`` with ``backend`` (auto: by file suffix), run as ``options`` say — the one way
    every backend is built (:class:`BackendOptions` lists what each field applies to). Artifacts whose
    export checks failed are refused unless ``options.allow_failed`` (the benchmark, which reports
    their accuracy). An artifact runs only with its sidecar, which must match it
    (:func:`sam2ms.artifacts.read_sidecar`); an ONNX without one runs with ``options.unverified``
    (its tile and input format then come from the graph, and the summary says so).
    """
    opts = (options or BackendOptions()).validate()
    path = Path(path)
    if backend not in BACKENDS:
        raise UsageError(f"--backend {backend}: use one of {', '.join(BACKENDS)}")
    if not path.is_file():
        raise UsageError(f"{path}: model file not found")
    natural = _BY_SUFFIX.get(path.suffix.lower())
    if natural is None:
        raise UsageError(
            f"{path}: unknown model kind {path.suffix!r}; pass a .plan (with its .json sidecar), "
            "an .onnx or a .pt checkpoint"
        )
    if natural == "torch" and opts.unverified:
        raise UsageError(f"--unverified: {path.name} is a checkpoint, which has no sidecar to skip; drop the flag")
    if natural == "tensorrt" and opts.unverified:
        raise UsageError(
            f"--unverified: a plan runs only with its sidecar (it names the TensorRT library and the "
            f"batch profile); keep {sidecar_path(path).name} beside {path.name}"
        )
    side = None
    if natural != "torch" and (sidecar_path(path).is_file() or not opts.unverified):
        if natural == "onnxruntime" and not sidecar_path(path).is_file():
            raise UsageError(
                f"{path}: no sidecar ({sidecar_path(path).name}): export with sam2ms-export, which "
                "writes one, or pass --unverified to run it with what the graph says"
            )
        side = Sidecar.read(path)
    if natural == "onnxruntime" and backend == "auto":
        natural = _auto_onnx_backend(opts.providers, opts.precision, side.precision if side else "fp32")
    if opts.triton_url is not None and side is None and natural != "torch":
        raise UsageError(
            f"--triton: {path.name} has no sidecar; pass the exported artifact the server serves, with its "
            "sidecar (the served model is checked against it)"
        )
    if opts.triton_url is not None and natural in ("onnxruntime", "openvino", "tensorrt"):
        natural = "triton"  # the artifact is the reference the served model is checked against
    chosen = natural if backend == "auto" else backend
    if chosen == "openvino" and natural == "onnxruntime":
        natural = "openvino"  # both run .onnx files
    if chosen == "triton" and natural != "triton":
        raise UsageError(
            f"--backend triton: pass --triton URL, and as MODEL the exported .onnx/.plan (with its sidecar) "
            f"the server serves, not {path.name}"
        )
    if chosen != natural:
        raise UsageError(f"--backend {backend} cannot run {path.name}: {natural} runs {path.suffix} files")
    if opts.cuda_graph and chosen not in ("tensorrt", "torch"):
        raise UsageError(
            f"--cuda-graph: TensorRT plans and checkpoints on CUDA are captured into CUDA graphs, not {path.name}"
        )
    if chosen == "onnxruntime" and opts.precision != "fp32":
        raise UsageError(
            f"--precision {opts.precision}: ONNX Runtime runs the precision of the model file; for BF16 "
            "use --backend openvino (pip install 'sam2ms[openvino]')"
        )
    _refuse_unread(opts, chosen, path)
    if chosen == "torch":
        from .torch_backend import TorchBackend

        return TorchBackend(path, opts)
    if side is None:
        info = ModelInfo(str(path), "onnx", opts.tile or 0, "fp32", unverified=True)
    else:
        info = ModelInfo(
            str(path),
            "tensorrt-plan" if chosen == "tensorrt" else "onnx",
            check_sidecar(path, side, opts.tile, opts.allow_failed),
            side.precision,
            input_format=side.input_format,
            sidecar=side.data,
        )
    if chosen == "triton":
        from .triton_backend import TritonBackend

        return TritonBackend(path, info, opts)
    if chosen == "tensorrt":
        from .tensorrt_backend import TensorRTBackend

        return TensorRTBackend(path, info, opts)
    if chosen == "openvino":
        from .openvino_backend import OpenVinoBackend

        return OpenVinoBackend(path, info, opts)
    from .onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(path, info, opts)
