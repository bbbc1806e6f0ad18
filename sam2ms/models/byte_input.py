"""uint8 RGB windows in, logits out: the normalisation of :func:`sam2ms.preprocess.normalize` in torch.

One module for both places that need it on a device: the exported graph (``sam2ms-export --input
uint8`` wraps the model in :class:`ByteInput`) and the PyTorch backend of the runtime, which takes
uint8 windows like an exported model and normalises them on its device.
"""

from __future__ import annotations

import torch
from torch import nn
from typing_extensions import override

from ..preprocess import IMAGENET_MEAN, IMAGENET_STD


class ByteInput(nn.Module):
    """``model`` fed with uint8 RGB windows (N x T x T x 3): the same arithmetic as
    :func:`sam2ms.preprocess.normalize` (x / 255, minus mean, over std, in float32).

    Why it is the export's default: a 1024² tile is 3 MB as bytes and 12 MB as normalised float32,
    so the host-to-GPU copy shrinks 4×, and the host does no per-pixel work at all — the windows go
    from the decoder into the pinned buffer as they are; on a GPU the normalisation costs next to
    nothing.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 N x T x T x 3 -> normalised float32 N x 3 x T x T (a channels-last view)."""
        # Cast first: TensorRT takes a uint8 tensor only into a Cast (a Transpose of uint8 is refused).
        x = x.to(torch.float32).permute(0, 3, 1, 2) / 255.0
        return (x - self.mean) / self.std

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(self.normalize(x))
        return logits
