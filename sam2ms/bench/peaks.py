"""Dense peak throughput of known devices, for MFU (model FLOPs utilisation).

Vendor datasheet figures without sparsity, in TFLOPS (TOPS for int8). The FP32 row is plain
FP32 (not TF32). A device or precision missing here gets no MFU rather than a guess."""

from __future__ import annotations

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


def peak_tflops(device: str, precision: str) -> float | None:
    """The dense peak for ``device`` (as torch/nvidia-smi name it) at ``precision``, if known."""
    name = device.lower()
    for fragment, peaks in DEVICE_PEAKS.items():
        if fragment in name:
            return peaks.get(precision)
    return None


def mfu(flops_per_tile: float | None, tiles_per_s: float, peak: float | None) -> float | None:
    """Achieved FLOP/s as a fraction of the device's peak; None when either is unknown."""
    if not flops_per_tile or not peak:
        return None
    return flops_per_tile * tiles_per_s / (peak * 1e12)
