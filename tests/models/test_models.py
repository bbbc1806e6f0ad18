import pytest
import torch

from sam2ms.errors import UsageError
from sam2ms.models import SAM2MS, create_model, list_models
from sam2ms.models.hiera import official_trunk_config
from sam2ms.models.stats import model_stats

WIDTHS = {"sam2ms_nano": 32, "sam2ms_hiera_t": 96, "sam2ms_hiera_s": 96, "sam2ms_hiera_bp": 112, "sam2ms_hiera_l": 144}


def test_registry_names() -> None:
    assert set(list_models()) == set(WIDTHS)


@pytest.mark.parametrize("name", sorted(WIDTHS))
def test_forward_shape_and_frozen_split(name: str) -> None:
    model = create_model(name).eval()
    assert isinstance(model, SAM2MS)
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 1, 64, 96)
    assert torch.isfinite(y).all()
    # Logits, not probabilities: values outside [0, 1] are expected from a random head.
    for pname, p in model.named_parameters():
        in_trunk = pname.startswith("encoder.")
        is_adapter = ".prompt_learn." in pname
        assert p.requires_grad == (not in_trunk or is_adapter), pname
    assert model.drb1.branch0[0].conv.in_channels == WIDTHS[name]


def test_official_configs_come_from_sam2() -> None:
    large = official_trunk_config("l")
    assert large["embed_dim"] == 144 and list(large["stages"]) == [2, 6, 36, 4]
    assert official_trunk_config("bp")["embed_dim"] == 112


def test_input_must_be_multiple_of_32() -> None:
    model = create_model("sam2ms_nano")
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.randn(1, 3, 48, 64))


def test_unknown_model() -> None:
    with pytest.raises(UsageError, match="unknown model 'sam2ms_huge'"):
        create_model("sam2ms_huge")


def test_gradients_reach_adapters_but_not_trunk() -> None:
    model = create_model("sam2ms_nano")
    model(torch.randn(1, 3, 64, 64)).mean().backward()
    assert model.encoder.blocks[0].prompt_learn[0].weight.grad is not None
    assert model.encoder.blocks[0].block.attn.qkv.weight.grad is None
    assert model.decoder.head[0].weight.grad is not None


def test_stats_counts_params_and_flops() -> None:
    s = model_stats("sam2ms_nano", 64)
    model = create_model("sam2ms_nano")
    assert s["params_total"] == sum(p.numel() for p in model.parameters())
    assert 0 < s["params_trainable"] < s["params_total"]
    # FLOPs grow with the pixel count: 4x pixels -> close to 4x FLOPs
    s2 = model_stats("sam2ms_nano", 128)
    assert 3.5 < s2["gflops"] / s["gflops"] < 4.5
    with pytest.raises(UsageError):
        model_stats("sam2ms_nano", 100)
