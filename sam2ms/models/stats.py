"""Parameter counts and FLOPs of a model, measured with torch's own FLOP counter.

FLOPs are counted by ``torch.utils.flop_counter`` (2 FLOPs per multiply-add, convolutions,
matmuls and attention) on the meta device, so even SAM2MS-L at 1024² costs no compute here.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..errors import UsageError
from .net import STRIDE
from .registry import create_model


def model_stats(name: str, size: int = 1024) -> dict[str, Any]:
    """Total/trainable/frozen parameters and forward GFLOPs for one ``size`` x ``size`` tile."""
    if size <= 0 or size % STRIDE:
        raise UsageError(f"--size {size}: must be a positive multiple of {STRIDE}")
    model = create_model(name).eval()
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    model = model.to("meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.empty(1, 3, size, size, device="meta"))
    by_module = counter.get_flop_counts()
    top = {k: sum(v.values()) for k, v in by_module.items() if k.count(".") == 1}
    flops = counter.get_total_flops()
    return {
        "model": name,
        "size": size,
        "params_total": total,
        "params_trainable": trainable,
        "params_frozen": total - trainable,
        "gflops": flops / 1e9,
        "gmacs": flops / 2e9,
        "gflops_by_part": {k.split(".", 1)[1]: v / 1e9 for k, v in top.items()},
        "flop_counter": "torch.utils.flop_counter (2 FLOPs per multiply-add)",
    }
