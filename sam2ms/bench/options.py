"""What one ``sam2ms bench`` run measures (:class:`BenchOptions`): read by the runner and by the
subjects it builds, so it sits below both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sam2ms.errors import UsageError
from sam2ms.runtime.backends.base import BackendOptions

TORCH_PRECISIONS = ("fp32", "fp16", "bf16")
#: How a PyTorch variant runs, after its precision: ``+graph`` replayed from CUDA graphs (one per
#: lane and batch size), ``+compile`` / ``+reduce-overhead`` / ``+max-autotune`` torch.compile in
#: that mode, ``+cl`` in channels-last memory.
TORCH_RUNS = {
    "graph": "CUDA graph",
    "compile": "compiled",
    "reduce-overhead": "compiled reduce-overhead",
    "max-autotune": "compiled max-autotune",
}
TORCH_VARIANT_HELP = (
    "PRECISION[+graph|+compile|+reduce-overhead|+max-autotune][+cl] with PRECISION fp32, fp16 or "
    "bf16 (compile alone: fp32+compile), e.g. bf16+graph"
)


@dataclass(frozen=True)
class TorchVariant:
    """One PyTorch reference configuration of ``sam2ms bench --torch``."""

    precision: str = "fp32"
    run: str = "eager"  # or a key of TORCH_RUNS
    channels_last: bool = False

    @classmethod
    def parse(cls, text: str) -> TorchVariant:
        """``bf16+graph+cl`` -> TorchVariant("bf16", "graph", True); a UsageError for anything else."""
        words = text.split("+")
        if words == ["compile"]:  # the older spelling, kept
            words = ["fp32", "compile"]
        precision, rest = words[0], words[1:]
        channels_last = rest[-1:] == ["cl"]
        rest = rest[:-1] if channels_last else rest
        if precision not in TORCH_PRECISIONS or len(rest) > 1 or (rest and rest[0] not in TORCH_RUNS):
            raise UsageError(f"--torch {text}: each variant is {TORCH_VARIANT_HELP}")
        return cls(precision, rest[0] if rest else "eager", channels_last)

    @property
    def label(self) -> str:
        """The row's subject, e.g. ``pytorch CUDA graph bf16 channels-last``."""
        how = "eager" if self.run == "eager" else TORCH_RUNS[self.run]
        return f"pytorch {how} {self.precision}" + (" channels-last" if self.channels_last else "")

    def backend_options(self, tile: int | None = None) -> BackendOptions:
        """How ``open_model`` runs this variant (at ``tile``)."""
        return BackendOptions(
            precision=self.precision,
            tile=tile,
            cuda_graph=self.run == "graph",
            channels_last=self.channels_last,
            compile=None if self.run in ("eager", "graph") else ("default" if self.run == "compile" else self.run),
        )


@dataclass
class BenchOptions:
    """What one ``sam2ms bench`` run measures: the models, batches, streams, iterations and variants."""

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
        if self.torch_variants != ["auto"]:
            for variant in self.torch_variants:
                TorchVariant.parse(variant)
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
