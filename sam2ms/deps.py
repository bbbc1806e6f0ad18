"""Optional dependencies: one way to import them and one message when they are missing.

A deployment host installs only ``sam2ms[cpu]`` (or a TensorRT extra); training and export need
``sam2ms[train]``. Every command imports what it needs through :func:`require`, so a missing
library is a one-line error naming the extra to install (exit 2), never a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import UsageError

#: What to install for each optional top-level module, as users should read it.
INSTALL = {
    "torch": "pip install 'sam2ms[train]'",
    "torchvision": "pip install 'sam2ms[train]'",
    "sam2": "pip install 'sam2ms[train]'",
    "onnx": "pip install 'sam2ms[train]'",
    "onnxslim": "pip install 'sam2ms[train]'",
    "onnxruntime": "pip install 'sam2ms[cpu]' (or 'sam2ms[ort-gpu]' on an NVIDIA host; never both)",
    "tensorrt": "pip install 'sam2ms[trt]' (CUDA 13) or 'sam2ms[trt-cu12]'",
    "tensorrt_rtx": "pip install 'sam2ms[rtx]' (CUDA 13) or 'sam2ms[rtx-cu12]'",
    "cuda": "pip install cuda-python of your TensorRT's CUDA major (the [trt]/[rtx] extras bring it)",
    "rasterio": "pip install 'sam2ms[geo]'",
    "skimage": "pip install 'sam2ms[geo]'",
    "scipy": "pip install 'sam2ms[geo]'",
    "networkx": "pip install 'sam2ms[geo]'",
    "matplotlib": "pip install 'sam2ms[plot]'",
    "ray": "pip install 'sam2ms[ray]'",
    "openvino": "pip install 'sam2ms[openvino]'",
    "tritonclient": "pip install 'sam2ms[triton]'",
}


class MissingDependency(UsageError):
    """An optional library a command needs is not installed (exit 2, naming the extra)."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``onnxruntime.quantization``) or raise :class:`MissingDependency`
    saying that ``purpose`` needs it and how to install it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # The module itself, or a library it imports (onnxruntime.quantization needs onnx).
        missing = (exc.name or module).split(".")[0]
        hint = INSTALL.get(missing, f"pip install {missing}")
        raise MissingDependency(f"{purpose} needs {missing}, which is not installed: {hint}") from None


TENSORRT_FLAVOURS = ("tensorrt", "tensorrt_rtx")


def import_tensorrt(flavour: str, purpose: str) -> tuple[ModuleType, str]:
    """The TensorRT library: ``tensorrt`` or ``tensorrt_rtx``, or ``auto`` (tensorrt first) — the one
    importer of the builder and the runtime. Returns (module, its name). ``flavour`` may come from a
    file (a plan's sidecar), so it is only ever looked up in :data:`TENSORRT_FLAVOURS`: any other
    name is refused, never imported.
    """
    if flavour != "auto" and flavour not in TENSORRT_FLAVOURS:
        raise UsageError(f"unknown builder {flavour!r}: sam2ms runs plans of {' or '.join(TENSORRT_FLAVOURS)}")
    names = TENSORRT_FLAVOURS if flavour == "auto" else (flavour,)
    for name in names:
        try:
            return importlib.import_module(name), name
        except ImportError:
            continue
    hints = " or ".join(INSTALL[n] for n in names)
    raise MissingDependency(f"{purpose} needs TensorRT ({' / '.join(names)} not importable): {hints}")
