"""Convolutional building blocks of SAM2MS, mirroring the authors' code module for module.

Sub-module names (``conv``/``bn``, ``branch0``..``branch3``, ``conv_cat``, ``conv_res``) match
the authors' SAM2MSNet so that their released weights load by a prefix mapping only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm, deliberately *without* ReLU: the authors' ``BasicConv2d``
    declares a ReLU but never applies it, and their trained weights expect that.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int | tuple[int, int],
        padding: int | tuple[int, int] = 0,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, padding=padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.bn(self.conv(x))
        return out


def cbr(cin: int, cout: int) -> nn.Sequential:
    """Conv3x3 (with bias) - BN - ReLU as ``nn.Sequential`` (keys ``0.*``, ``1.*``, as the authors')."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DRB(nn.Module):
    """Dimension-reduction block (the authors' ``RFB_modified``): four receptive-field branches
    (1x1; and for k = 3, 5, 7: 1x1 -> 1xk -> kx1 -> 3x3 dilated k), concatenated and fused by a
    3x3 conv, plus a 1x1 residual projection, then ReLU. Maps any width to ``cout`` (64).
    """

    branch1: nn.Module  # branches 1-3 are made by setattr below
    branch2: nn.Module
    branch3: nn.Module

    def __init__(self, cin: int, cout: int = 64) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(ConvBN(cin, cout, 1))
        for i, k in enumerate((3, 5, 7), start=1):
            setattr(
                self,
                f"branch{i}",
                nn.Sequential(
                    ConvBN(cin, cout, 1),
                    ConvBN(cout, cout, (1, k), padding=(0, k // 2)),
                    ConvBN(cout, cout, (k, 1), padding=(k // 2, 0)),
                    ConvBN(cout, cout, 3, padding=k, dilation=k),
                ),
            )
        self.conv_cat = ConvBN(4 * cout, cout, 3, padding=1)
        self.conv_res = ConvBN(cin, cout, 1)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)]
        return F.relu(self.conv_cat(torch.cat(branches, dim=1)) + self.conv_res(x))


def upsample_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to ``ref``'s spatial size (align_corners=False, as the authors')."""
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


class MSSM(nn.Module):
    """Multi-scale subtraction module: units CBR(|up(a) - b|) over adjacent levels, three orders.

    Returns (level1, level2, level3) at strides 4, 8, 16.
    """

    # the authors' module names, made by setattr below (declared here for readers and type checkers)
    x43: nn.Module
    x32: nn.Module
    x21: nn.Module
    x432: nn.Module
    x321: nn.Module
    x4321: nn.Module
    level2: nn.Module
    level1: nn.Module

    def __init__(self, ch: int = 64) -> None:
        super().__init__()
        for name in ("x43", "x32", "x21", "x432", "x321", "x4321", "level2", "level1"):
            setattr(self, name, cbr(ch, ch))

    @staticmethod
    def _sub(unit: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = unit(torch.abs(upsample_to(a, b) - b))
        return out

    @override
    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor, x4: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x43 = self._sub(self.x43, x4, x3)
        x32 = self._sub(self.x32, x3, x2)
        x21 = self._sub(self.x21, x2, x1)
        x432 = self._sub(self.x432, x43, x32)
        x321 = self._sub(self.x321, x32, x21)
        x4321 = self._sub(self.x4321, x432, x321)
        level2 = self.level2(x32 + x432)
        level1 = self.level1(x21 + x321 + x4321)
        return level1, level2, x43


class Decoder(nn.Module):
    """CNN decoder: reduce the raw deepest trunk feature, then fuse upward with the MSSM levels.

    Outputs one-channel logits at stride 4 (the caller upsamples to the input size).
    """

    def __init__(self, deep_channels: int, ch: int = 64, num_classes: int = 1) -> None:
        super().__init__()
        self.reduce4 = cbr(deep_channels, ch)
        self.fuse3 = cbr(ch, ch)
        self.fuse2 = cbr(ch, ch)
        self.head = nn.Sequential(nn.Conv2d(ch, num_classes, 3, padding=1))

    @override
    def forward(
        self, deep: torch.Tensor, level1: torch.Tensor, level2: torch.Tensor, level3: torch.Tensor
    ) -> torch.Tensor:
        d4 = self.reduce4(deep)
        o3 = self.fuse3(upsample_to(d4, level3) + level3)
        o2 = self.fuse2(upsample_to(o3, level2) + level2)
        out: torch.Tensor = self.head(upsample_to(o2, level1) + level1)
        return out
