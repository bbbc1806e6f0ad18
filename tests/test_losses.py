import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sam2ms.errors import UsageError
from sam2ms.losses import SAM2MSLoss, build_lossnet, structure_loss


def test_structure_loss_known_value() -> None:
    # logits 0 -> p = 0.5; empty mask -> weights 1 everywhere.
    h = w = 16
    loss = structure_loss(torch.zeros(2, 1, h, w), torch.zeros(2, 1, h, w))
    expected = math.log(2) + 1 - 1 / (0.5 * h * w + 1)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_bce_term_is_boundary_weighted() -> None:
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 24:40, :] = 1
    logits = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    weight = 1 + 5 * torch.abs(F.avg_pool2d(mask, 31, 1, 15) - mask)
    assert weight.max() > 3  # boundaries really are up-weighted
    prob = torch.sigmoid(logits)
    inter = (prob * mask * weight).sum()
    union = ((prob + mask) * weight).sum()
    wiou = 1 - (inter + 1) / (union - inter + 1)
    weighted_bce = (weight * F.binary_cross_entropy_with_logits(logits, mask, reduction="none")).sum() / weight.sum()
    plain_bce = F.binary_cross_entropy_with_logits(logits, mask)
    assert structure_loss(logits, mask).item() == pytest.approx((weighted_bce + wiou).item(), rel=1e-5)
    assert abs(weighted_bce - plain_bce) > 1e-3  # the authors' unweighted BCE would differ


def test_perfect_prediction_has_lower_loss() -> None:
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 10:20] = 1
    good = structure_loss((mask * 2 - 1) * 10, mask)
    bad = structure_loss(-(mask * 2 - 1) * 10, mask)
    assert good < 0.05 < bad


def test_lossnet_from_weights_file(tmp_path: Path) -> None:
    import torchvision

    ref = torchvision.models.resnet50()
    f = tmp_path / "resnet50.pth"
    torch.save(ref.state_dict(), f)
    net = build_lossnet("resnet50", f)
    assert net is not None
    first = net.levels[0]
    assert isinstance(first, torch.nn.Conv2d) and torch.equal(first.weight, ref.conv1.weight)
    assert len(net.levels) == 5 and not any(p.requires_grad for p in net.parameters())
    mask = (torch.rand(1, 1, 64, 64) > 0.8).float()
    assert net(mask, mask).item() == 0.0
    assert net(torch.full_like(mask, 0.5), mask).item() > 0
    net.train()
    assert not net.training  # frozen BN statistics never update


def test_total_loss_adds_a_tenth_of_lossnet() -> None:
    net = build_lossnet("vgg16", "random")
    mask = (torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(1)) > 0.8).float()
    logits = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(2))
    total, parts = SAM2MSLoss(net)(logits, mask)
    assert total.item() == pytest.approx(parts["structure"] + 0.1 * parts["lossnet"], rel=1e-5)
    total_none, parts_none = SAM2MSLoss(None)(logits, mask)
    assert "lossnet" not in parts_none and total_none.item() == pytest.approx(parts["structure"])


def test_lossnet_without_weights_says_where_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"download.pytorch.org.*--lossnet none"):
        build_lossnet("resnet50", None)
    with pytest.raises(UsageError, match="not found"):
        build_lossnet("resnet50", tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(UsageError, match="not torchvision resnet50"):
        build_lossnet("resnet50", bad)
    with pytest.raises(UsageError, match="unknown lossnet"):
        build_lossnet("alexnet", None)
    assert build_lossnet("none", None) is None
