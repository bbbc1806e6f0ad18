"""What one ``sam2ms bench`` run measures (:class:`BenchOptions`): read by the runner and by the
subjects it builds, so it sits below both."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sam2ms.errors import UsageError

TORCH_VARIANTS = ("fp32", "fp16", "bf16", "compile")


@dataclass
class BenchOptions:
    models: list[Path]
    batches: list[int] = field(default_factory=lambda: [1])
    streams: list[int] = field(default_factory=lambda: [1])
    iterations: int = 20
    warmup: int = 3
    backend: str = "auto"
    reference: Path | None = None  # checkpoint; default: the one named in the first sidecar
    torch_variants: list[str] = field(default_factory=lambda: ["fp32"])  # or ["auto"] (the CLI's default)
    openvino_precisions: list[str] = field(default_factory=lambda: ["fp32", "bf16"])
    accuracy_tiles: int = 4
    threads: int | None = None
    seed: int = 0
    cuda_graph: bool = False  # also measure each TensorRT plan replayed from CUDA graphs
    isolate: bool = True  # each subject in its own process (see _isolated)
    unverified: bool = False  # measure ONNX files that have no sidecar (sam2ms-infer --unverified)

    def validate(self) -> BenchOptions:
        """Refuse bad options before anything is loaded."""
        if not self.models:
            raise UsageError("give at least one MODEL (.plan, .onnx or .pt)")
        if self.iterations < 1:
            raise UsageError(f"--iterations {self.iterations}: at least 1 timed batch is needed")
        if self.warmup < 0:
            raise UsageError(f"--warmup {self.warmup}: cannot be negative")
        if not self.batches or min(self.batches) < 1 or not self.streams or min(self.streams) < 1:
            raise UsageError("--batch and --streams take positive integers, e.g. --batch 1,2,4 --streams 1,2")
        unknown = [v for v in self.torch_variants if v not in TORCH_VARIANTS] if self.torch_variants != ["auto"] else []
        if unknown:
            raise UsageError(f"--torch {','.join(unknown)}: use auto or some of {', '.join(TORCH_VARIANTS)}")
        from sam2ms.runtime.backends import BACKENDS
        from sam2ms.runtime.backends.openvino_backend import PRECISIONS

        backends = self.backend.split(",")
        if any(b not in BACKENDS for b in backends) or ("auto" in backends and len(backends) > 1):
            raise UsageError(f"--backend {self.backend}: auto, or some of {', '.join(BACKENDS[1:])}")
        if not self.openvino_precisions or any(p not in PRECISIONS for p in self.openvino_precisions):
            raise UsageError(f"--openvino-precision {','.join(self.openvino_precisions)}: some of fp32,bf16")
        if self.accuracy_tiles < 1:
            raise UsageError("--accuracy-tiles must be at least 1")
        return self
