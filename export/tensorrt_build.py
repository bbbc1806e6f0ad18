"""ONNX -> TensorRT plan with ``tensorrt`` (10.x/11.x) or ``tensorrt_rtx``, one strongly typed path.

Precision comes from the ONNX graph (an FP16 ONNX gives an FP16 plan; Q/DQ gives INT8): the
network is created STRONGLY_TYPED and no precision flag is set, which is the only way that works
on TensorRT 11 (it removed the FP16/INT8 builder flags) and TensorRT-RTX. ``tensorrt_rtx`` builds
ahead of time for chosen compute capabilities without a GPU; ``tensorrt`` builds for the GPU it
runs on. Both are imported lazily, and a missing one is a UsageError naming the pip extra.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sam2ms.deps import INSTALL, import_tensorrt
from sam2ms.errors import Sam2msError, UsageError
from sam2ms.fileio import atomic_write

BUILDERS = ("auto", "tensorrt", "tensorrt_rtx")
# RTX GPUs: Turing (RTX 20), Ampere (RTX 30), Ada (RTX 40), Blackwell (RTX 50).
RTX_TARGETS = ("sm75", "sm86", "sm89", "sm120")
# tensorrt_rtx cannot compile an FP32 GEMM for Turing ("Cannot compile operation ... for Turing
# (SM75): FP32 GEMM is not supported"). An FP32 plan is all FP32 GEMMs, and an INT8 plan keeps the
# attention MatMuls (and --auto-exclude layers) in FP32; only an FP16 plan builds for sm75.
TURING_REASON = "tensorrt_rtx has no FP32 GEMM for Turing (sm75)"
UNSUPPORTED_TARGETS = {
    "fp32": {"sm75": TURING_REASON + " and an FP32 plan is made of them"},
    "int8": {"sm75": TURING_REASON + " and an INT8 plan keeps the attention MatMuls in FP32"},
    "fp16": {},
}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$", re.IGNORECASE)


@dataclass(frozen=True)
class BatchProfile:
    """Optimisation profile for the batch axis (``--batch min:opt:max``)."""

    min: int
    opt: int
    max: int

    @classmethod
    def parse(cls, spec: str) -> BatchProfile:
        """``MIN:OPT:MAX`` (or one size for all three) -> a profile; a UsageError for anything else."""
        parts = spec.split(":")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 3 or not 1 <= values[0] <= values[1] <= values[2]:
            raise UsageError(f"--batch {spec}: expected min:opt:max with 1 <= min <= opt <= max, e.g. 1:4:8")
        return cls(*values)

    def as_list(self) -> list[int]:
        """``[min, opt, max]``, as TensorRT's optimisation profile takes them."""
        return [self.min, self.opt, self.max]


def parse_size(spec: str) -> int:
    """``4G`` / ``512M`` / ``1.5GiB`` / ``1073741824`` -> bytes."""
    m = _SIZE.match(spec.strip())
    if not m:
        raise UsageError(f"--workspace {spec}: expected a size like 4G, 512M or a byte count")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)


def load_tensorrt(builder: str) -> tuple[ModuleType, str]:
    """Import the requested TensorRT flavour (``auto``: tensorrt, else tensorrt_rtx)."""
    if builder not in BUILDERS:
        raise UsageError(f"--builder {builder}: use one of {', '.join(BUILDERS)}")
    return import_tensorrt(builder, "building a plan (or pass --onnx-only)")


def default_targets(precision: str) -> list[str]:
    """The RTX generations a ``tensorrt_rtx`` plan of ``precision`` is built for by default."""
    return [t for t in RTX_TARGETS if t not in UNSUPPORTED_TARGETS[precision]]


def resolve_targets(trt: ModuleType, name: str, targets: list[str] | None, precision: str = "fp32") -> list[Any]:
    """Compute capabilities to build for (``tensorrt_rtx`` only). A target that cannot hold a plan
    of ``precision`` (:data:`UNSUPPORTED_TARGETS`) is left out by default and refused when asked for.
    """
    if name != "tensorrt_rtx":
        if targets:
            raise UsageError(
                f"--target: {name} builds for the GPU it runs on; ahead-of-time targets need "
                f"--builder tensorrt_rtx ({INSTALL['tensorrt_rtx']})"
            )
        return []
    known = {
        m.lower(): getattr(trt.ComputeCapability, m) for m in dir(trt.ComputeCapability) if re.fullmatch(r"SM\d+", m)
    }
    excluded = UNSUPPORTED_TARGETS[precision]
    chosen = [t.strip().lower() for t in (targets or default_targets(precision)) if t.strip()]
    refused = [t for t in chosen if t in excluded]
    if refused:
        raise UsageError(
            f"--target {','.join(refused)}: no {precision.upper()} plan for it "
            f"({excluded[refused[0]]}); drop it, or build with --fp16 for it"
        )
    unknown = [t for t in chosen if t not in known]
    if unknown:
        raise UsageError(
            f"--target {','.join(unknown)}: {name} {trt.__version__} knows "
            f"{', '.join(sorted(known, key=lambda s: int(s[2:])))}"
        )
    return [known[t] for t in chosen]


def _parse(trt: ModuleType, network: Any, logger: Any, onnx_path: Path) -> Any:
    parser = trt.OnnxParser(network, logger)
    if parser.parse_from_file(str(onnx_path)):
        return parser
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        lines.append(f"  node {err.node()} {err.node_name() or '?'} ({err.node_operator() or '?'}): {err.desc()}")
    raise Sam2msError(f"{onnx_path}: the TensorRT ONNX parser rejected the graph:\n" + "\n".join(lines))


def build_plan(
    onnx_path: str | Path,
    plan_path: str | Path,
    *,
    builder: str,
    shapes: list[list[int]],
    workspace: int,
    targets: list[str] | None = None,
    timing_cache: str | Path | None = None,
    profiles: int = 1,
    input_name: str = "image",
    precision: str = "fp32",
) -> dict[str, Any]:
    """Build and write a plan for input ``shapes`` (min, opt, max: the optimisation profile);
    returns the facts the sidecar records.
    """
    if profiles < 1:
        raise UsageError(f"--profiles {profiles}: at least 1")
    trt, name = load_tensorrt(builder)
    capabilities = resolve_targets(trt, name, targets, precision)
    started = time.perf_counter()
    logger = trt.Logger(trt.Logger.WARNING)
    trt_builder = trt.Builder(logger)
    network = trt_builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    _parse(trt, network, logger, Path(onnx_path))
    config = trt_builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    # One profile serves every concurrent execution context: TensorRT 10 made profile sharing
    # (the 8.6 preview feature kPROFILE_SHARING_0806) the default and TensorRT-RTX has no other
    # mode. More identical profiles only cost plan size and build time; --profiles K stays for
    # TensorRT 8.x-style deployments.
    for _ in range(profiles):
        profile = trt_builder.create_optimization_profile()
        profile.set_shape(input_name, *[tuple(s) for s in shapes])
        config.add_optimization_profile(profile)
    if capabilities:
        config.num_compute_capabilities = len(capabilities)
        for i, cc in enumerate(capabilities):
            config.set_compute_capability(cc, i)
    cache_note = _use_timing_cache(config, name, timing_cache)
    plan = trt_builder.build_serialized_network(network, config)
    if plan is None:
        raise Sam2msError(f"{name} could not build a plan from {onnx_path} (see the builder messages above)")
    atomic_write(plan_path, lambda f: f.write(memoryview(plan)))
    if cache_note == "used":
        cache = config.get_timing_cache().serialize()
        atomic_write(timing_cache, lambda f: f.write(memoryview(cache)))  # type: ignore[arg-type]
    return {
        "builder": name,
        "builder_version": trt.__version__,
        "targets": [str(c).rsplit(".", 1)[-1].lower() for c in capabilities] or ["the building GPU"],
        "batch_profile": [s[0] for s in shapes],
        "profiles": profiles,
        "workspace_bytes": workspace,
        "timing_cache": cache_note,
        "build_seconds": round(time.perf_counter() - started, 2),
    }


def _use_timing_cache(config: Any, name: str, path: str | Path | None) -> str:
    """Load a timing cache into the config where the library has one (TensorRT-RTX has none:
    it tunes at run time and keeps a runtime cache instead).
    """
    if path is None:
        return "none"
    if name == "tensorrt_rtx":
        return "not supported by tensorrt_rtx (it tunes at run time)"
    path = Path(path)
    cache = config.create_timing_cache(path.read_bytes() if path.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    return "used"
