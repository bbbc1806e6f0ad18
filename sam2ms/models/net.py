"""SAM2MS: frozen Hiera trunk + adapters -> DRB x4 -> MSSM -> CNN decoder -> logits."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from .blocks import DRB, MSSM, Decoder
from .hiera import build_trunk, trunk_channels

STRIDE = 32
REDUCED_CHANNELS = 64


class SAM2MS(nn.Module):
    """The SAM2MS road-segmentation network (authors' architecture, our names).

    Input: N x 3 x H x W, ImageNet-normalised RGB, H and W multiples of 32.
    Output: N x 1 x H x W **logits** (the authors return a sigmoid and then apply
    BCE-with-logits to it; we keep logits and apply the sigmoid at inference).
    """

    def __init__(self, trunk_config: dict[str, Any], name: str = "sam2ms") -> None:
        super().__init__()
        self.name = name
        self.trunk_config = dict(trunk_config)
        self.encoder = build_trunk(trunk_config)
        c1, c2, c3, c4 = trunk_channels(self.encoder)
        self.drb1 = DRB(c1, REDUCED_CHANNELS)
        self.drb2 = DRB(c2, REDUCED_CHANNELS)
        self.drb3 = DRB(c3, REDUCED_CHANNELS)
        self.drb4 = DRB(c4, REDUCED_CHANNELS)
        self.mssm = MSSM(REDUCED_CHANNELS)
        self.decoder = Decoder(c4, REDUCED_CHANNELS)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected N x 3 x H x W input, got {tuple(x.shape)}")
        if h % STRIDE or w % STRIDE:
            raise ValueError(f"input size {h}x{w}: height and width must be multiples of {STRIDE}")
        f1, f2, f3, f4 = self.encoder(x)
        level1, level2, level3 = self.mssm(self.drb1(f1), self.drb2(f2), self.drb3(f3), self.drb4(f4))
        logits = self.decoder(f4, level1, level2, level3)
        return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters that train (adapters, DRB, MSSM, decoder) and all buffers (BN statistics)."""
        frozen = {n for n, p in self.named_parameters() if not p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k not in frozen}
