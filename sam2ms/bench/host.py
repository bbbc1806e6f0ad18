"""Facts about the host a benchmark ran on, so that every figure names its software."""

from __future__ import annotations

import platform
from typing import Any

from sam2ms.runtime.backends.base import cpu_name


def host(threads: int | None = None) -> dict[str, Any]:
    """The host, with the CPU peak of the ``threads`` cores a benchmark used (all when None)."""
    from .peaks import cpu_peak

    return {
        "cpu": cpu_name(),
        "cpu_peak": cpu_peak(cores=threads),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def versions() -> dict[str, str]:
    """Library versions that shape the figures (absent ones left out)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in (
        "sam2ms",
        "numpy",
        "onnxruntime",
        "onnxruntime-gpu",
        "openvino",
        "torch",
        "tensorrt",
        "tensorrt-rtx",
        "cuda-python",
    ):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
