"""SAM2MS training loss: structure loss (weighted BCE + weighted IoU) + 0.1 x lossnet.

The structure loss weights pixels near road boundaries up to 6x (``1 + 5|avgpool31(G) - G|``).
Unlike the authors' code, the BCE term is really weighted (their legacy ``reduce='none'``
argument silently meant 'mean'), as the paper describes. The lossnet compares frozen ImageNet
features of ``sigmoid(pred)`` and the label (L2 over 5 levels), which rewards connected,
road-shaped predictions.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from .errors import UsageError
from .preprocess import IMAGENET_MEAN, IMAGENET_STD

LOSSNETS = ("resnet50", "vgg16", "none")
LOSSNET_WEIGHT = 0.1
LOSSNET_SIZE = 224
# Where users get the ImageNet weights that torchvision would otherwise download.
WEIGHT_FILES = {
    "resnet50": "https://download.pytorch.org/models/resnet50-11ad3fa6.pth (or resnet50-0676ba61.pth)",
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
}


def structure_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Boundary-weighted BCE-with-logits + weighted IoU, averaged over the batch."""
    weight = 1 + 5 * torch.abs(F.avg_pool2d(mask, kernel_size=31, stride=1, padding=15) - mask)
    wsum = weight.sum(dim=(2, 3))
    bce = F.binary_cross_entropy_with_logits(logits, mask, reduction="none")
    wbce = (weight * bce).sum(dim=(2, 3)) / wsum
    prob = torch.sigmoid(logits)
    inter = (prob * mask * weight).sum(dim=(2, 3))
    union = ((prob + mask) * weight).sum(dim=(2, 3))
    wiou = 1 - (inter + 1) / (union - inter + 1)
    return (wbce + wiou).mean()


class LossNet(nn.Module):
    """Frozen feature extractor levels; loss = sum over levels of MSE(features(pred), features(G))."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, levels: list[nn.Module]) -> None:
        super().__init__()
        self.levels = nn.ModuleList(levels)
        self.requires_grad_(False)
        self.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> LossNet:
        """Always stays in eval mode: frozen BatchNorm statistics must not drift with training."""
        return super().train(False)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.repeat(1, 3, 1, 1) - self.mean) / self.std
        return F.interpolate(x, size=(LOSSNET_SIZE, LOSSNET_SIZE), mode="bilinear", align_corners=False)

    @override
    def forward(self, prob: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x, y = self._prep(prob), self._prep(mask)
        loss = prob.new_zeros(())
        for level in self.levels:
            x, y = level(x), level(y)
            loss = loss + F.mse_loss(x, y)
        return loss


def build_lossnet(kind: str, weights: str | Path | None) -> LossNet | None:
    """The lossnet for ``--lossnet`` (None for 'none'), with ImageNet weights read from a file.

    No download here: without ``weights`` the run stops and says where to get the file.
    ``weights="random"`` is accepted for tests and smoke runs only (no pretrained features).
    """
    if kind not in LOSSNETS:
        raise UsageError(f"unknown lossnet {kind!r}; use one of {', '.join(LOSSNETS)}")
    if kind == "none":
        return None
    import torchvision

    if weights is None:
        raise UsageError(
            f"--lossnet {kind} needs the torchvision ImageNet weights: download "
            f"{WEIGHT_FILES[kind]} and pass --lossnet-weights FILE, or use --lossnet none"
        )
    net = torchvision.models.resnet50() if kind == "resnet50" else torchvision.models.vgg16()
    if str(weights) != "random":
        from .models.checkpoint import torch_load

        sd = torch_load(weights, f"download {WEIGHT_FILES[kind]}")
        try:
            net.load_state_dict(sd)
        except Exception as exc:  # noqa: BLE001 - a state_dict of anything else
            raise UsageError(
                f"{weights}: not torchvision {kind} ImageNet weights "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
            ) from None
    if kind == "resnet50":
        levels = [net.conv1, net.bn1, net.maxpool, net.layer1, net.layer2]
    else:
        f = net.features
        levels = [f[:4], f[4:9], f[9:16], f[16:23]]
    return LossNet(levels)


class SAM2MSLoss(nn.Module):
    """structure_loss + 0.1 x lossnet(sigmoid(pred), G); returns (total, parts for logging)."""

    def __init__(self, lossnet: LossNet | None) -> None:
        super().__init__()
        self.lossnet = lossnet

    @override
    def forward(self, logits: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        logits = logits.float()
        structure = structure_loss(logits, mask)
        parts = {"structure": float(structure.detach())}
        total = structure
        if self.lossnet is not None:
            feat = self.lossnet(torch.sigmoid(logits), mask)
            parts["lossnet"] = float(feat.detach())
            total = total + LOSSNET_WEIGHT * feat
        return total, parts
