"""Dense peak throughput of the device, for MFU (model FLOPs utilisation, "% of peak").

GPUs: vendor datasheet figures without sparsity, in TFLOPS (TOPS for int8); the FP32 row is
plain FP32 (not TF32). CPUs: derived as cores x FLOP per cycle per core x clock, the FLOP per
cycle from the instruction sets /proc/cpuinfo lists (two FMA pipes, as on every x86 core of the
last decade: AVX2 8 FP32 lanes -> 32, AVX-512 16 -> 64; AVX-512 BF16 dot products 128 BF16 FLOP;
AMX 1024 BF16 / 2048 INT8 ops; AMD Zen 4 runs AVX-512 on 256-bit datapaths: AVX2's rates) and
the clock /proc/cpuinfo reports (a VM's nominal one; boost may exceed it, so the fraction can pass
100 %). A device or precision missing here gets no MFU rather than a guess.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# name fragment (lower case) -> precision -> dense peak TFLOPS
DEVICE_PEAKS: dict[str, dict[str, float]] = {
    "h100 sxm": {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4, "int8": 1978.9},
    "h100 pcie": {"fp32": 51.2, "tf32": 378.0, "fp16": 756.0, "bf16": 756.0, "int8": 1513.0},
    "h100 80gb hbm3": {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4, "int8": 1978.9},
    "h200": {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4, "int8": 1978.9},
    "a100": {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0, "bf16": 312.0, "int8": 624.0},
    "rtx 4090": {"fp32": 82.6, "fp16": 165.2, "bf16": 165.2, "int8": 660.6},
    "rtx 3090": {"fp32": 35.6, "fp16": 71.0, "bf16": 71.0, "int8": 284.0},
    "rtx 5090": {"fp32": 104.8, "fp16": 209.5, "bf16": 209.5, "int8": 838.0},
}


def peak_tflops(device: str, precision: str, cores: int | None = None) -> float | None:
    """The dense peak for ``device`` (as torch/nvidia-smi name it, or this host's CPU, ``cores`` of
    it) at ``precision``.
    """
    name = device.lower()
    for fragment, peaks in DEVICE_PEAKS.items():
        if fragment in name:
            return peaks.get(precision)
    from sam2ms.runtime.backends.base import cpu_name

    cpu = cpu_peak(cores=cores)
    return cpu["tflops"].get(precision) if cpu and name == cpu_name().lower() else None


def _flop_per_cycle(flags: set[str], half_width_avx512: bool = False) -> dict[str, int]:
    """FLOP (ops for INT8) per cycle per core by precision, from the CPU's instruction sets;
    ``half_width_avx512``: AVX-512 runs on 256-bit datapaths (AMD Zen 4), so its rates are AVX2's.
    """
    wide = "avx512f" in flags and not half_width_avx512
    per = {"fp32": 64 if wide else 32 if {"avx2", "fma"} <= flags else 16}
    if "amx_bf16" in flags:
        per["bf16"] = 1024
    elif "avx512_bf16" in flags:
        per["bf16"] = 128 if wide else 64
    if "amx_int8" in flags:
        per["int8"] = 2048
    elif "avx512_vnni" in flags and wide:
        per["int8"] = 256
    elif {"avx512_vnni", "avx_vnni", "avx2"} & flags:
        per["int8"] = 128
    return per


def _field(text: str, name: str) -> str:
    """The first ``name : value`` of /proc/cpuinfo's text."""
    return next(
        (line.partition(":")[2].strip() for line in text.splitlines() if line.partition(":")[0].strip() == name), ""
    )


def half_width_avx512(cpuinfo: str) -> bool:
    """AMD family 25 (0x19: Zen 3 and Zen 4): Zen 4 executes AVX-512 as two 256-bit halves (Zen 5,
    family 26, has full 512-bit datapaths), so its AVX-512 peak per cycle is AVX2's.
    """
    return _field(cpuinfo, "vendor_id") == "AuthenticAMD" and _field(cpuinfo, "cpu family") == "25"


def cpu_peak(cpuinfo: str | None = None, cores: int | None = None) -> dict[str, Any] | None:
    """This host's CPU peak: cores x FLOP/cycle x clock per precision, with its inputs (None off Linux).
    ``cores``: the ones a benchmark's ``--threads`` uses (at most the CPUs this process may run on).
    """
    from sam2ms.runtime.backends.base import cpu_flags

    try:
        text = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = cpu_flags(text)
    mhz = max((float(line.partition(":")[2]) for line in text.splitlines() if line.startswith("cpu MHz")), default=0.0)
    if not flags or not mhz:
        return None
    if cores is None or cpuinfo is None:  # this host: at most the CPUs this process may run on
        usable = len(os.sched_getaffinity(0))
        cores = min(cores or usable, usable)
    per = _flop_per_cycle(flags, half_width_avx512(text))
    return {
        "cores": cores,
        "ghz": round(mhz / 1000, 3),
        "flop_per_cycle": per,
        "tflops": {p: cores * f * mhz * 1e6 / 1e12 for p, f in per.items()},
        "how": "cores x FLOP per cycle per core x the clock /proc/cpuinfo reports",
    }


def mfu(flops_per_tile: float | None, tiles_per_s: float, peak: float | None) -> float | None:
    """Achieved FLOP/s as a fraction of the device's peak; None when either is unknown."""
    if not flops_per_tile or not peak:
        return None
    return flops_per_tile * tiles_per_s / (peak * 1e12)
