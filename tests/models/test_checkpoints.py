"""Checkpoint formats: official SAM2 files, the authors' SAM2MS weights, and ours.

The files are written here in each format's real layout, from a model with random weights.
"""

from pathlib import Path

import pytest
import torch

from sam2ms.errors import UsageError
from sam2ms.models import create_model
from sam2ms.models.checkpoint import read_checkpoint, save_checkpoint


def _randomise(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):  # variances must stay positive
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
    return model


def _official_sam2_file(path: Path, trunk_sd: dict[str, torch.Tensor]) -> Path:
    """{"model": ...} with image_encoder.trunk.* keys (blocks un-wrapped) plus other SAM2 parts."""
    sd = {}
    for k, v in trunk_sd.items():
        if ".prompt_learn." in k:
            continue
        sd["image_encoder.trunk." + k.replace(".block.", ".", 1)] = v.clone()
    sd["image_encoder.neck.convs.0.conv.weight"] = torch.zeros(256, 96, 1, 1)
    sd["sam_mask_decoder.iou_token.weight"] = torch.zeros(1, 256)
    torch.save({"model": sd}, path)
    return path


def test_official_sam2_checkpoint_loads_into_trunk(tmp_path: Path) -> None:
    source = _randomise(create_model("sam2ms_nano"), 1)
    f = _official_sam2_file(tmp_path / "sam2.1_hiera_nano.pt", source.encoder.state_dict())
    model = create_model("sam2ms_nano", sam2_checkpoint=f)
    for k, v in source.encoder.state_dict().items():
        if ".prompt_learn." not in k:
            assert torch.equal(model.encoder.state_dict()[k], v), k
    # trunk stays frozen after loading
    assert not model.encoder.patch_embed.proj.weight.requires_grad


def test_sam2_checkpoint_of_other_size_is_refused(tmp_path: Path) -> None:
    f = _official_sam2_file(tmp_path / "nano.pt", create_model("sam2ms_nano").encoder.state_dict())
    with pytest.raises(UsageError, match=r"another SAM2 size|matching SAM2 size"):
        create_model("sam2ms_hiera_t", sam2_checkpoint=f)


def _authors_state_dict(model: torch.nn.Module, prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Our weights renamed by hand to the authors' SAM2MSNet names (docs/architecture.md, model facts)."""
    renames = {
        "drb1.": "rfb1.",
        "drb2.": "rfb2.",
        "drb3.": "rfb3.",
        "drb4.": "rfb4.",
        "mssm.x4321.": "x4_x3_x2_x1.",
        "mssm.x432.": "x4_x3_x2.",
        "mssm.x321.": "x3_x2_x1.",
        "mssm.x43.": "x4_x3.",
        "mssm.x32.": "x3_x2.",
        "mssm.x21.": "x2_x1.",
        "mssm.level2.": "level2.",
        "mssm.level1.": "level1.",
        "decoder.reduce4.": "x4_dem_4.",
        "decoder.fuse3.": "output4.",
        "decoder.fuse2.": "output2.",
        "decoder.head.": "output1.",
        "encoder.": "encoder.",
    }
    out = {}
    for k, v in model.state_dict().items():
        ours = next(p for p in renames if k.startswith(p))
        out[prefix + renames[ours] + k[len(ours) :]] = v.clone()
    # modules the authors define but never use
    out[prefix + "output3.0.weight"] = torch.zeros(64, 64, 3, 3)
    out[prefix + "x5_dem_4.0.weight"] = torch.zeros(64, 64, 3, 3)
    return out


@pytest.mark.parametrize("prefix", ["module.", ""])
def test_authors_weights_map_onto_ours(tmp_path: Path, prefix: str) -> None:
    source = _randomise(create_model("sam2ms_nano"), 2).eval()
    f = tmp_path / "SAM2MS-50.pth"
    torch.save(_authors_state_dict(source, prefix), f)
    model = create_model("sam2ms_nano", checkpoint=f).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_authors_large_model_is_recognised(tmp_path: Path) -> None:
    sd = {
        "rfb1.branch0.0.conv.weight": torch.zeros(64, 144, 1, 1),
        "encoder.blocks.0.block.norm1.weight": torch.zeros(144),
    }
    torch.save(sd, tmp_path / "l.pth")
    ck = read_checkpoint(tmp_path / "l.pth")
    assert ck.kind == "authors" and ck.model_name == "sam2ms_hiera_l"
    assert "drb1.branch0.0.conv.weight" in ck.state_dict


def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    sd = _authors_state_dict(create_model("sam2ms_nano"))
    del sd["module.output1.0.weight"]
    sd["module.extra_head.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(UsageError) as err:
        create_model("sam2ms_nano", checkpoint=tmp_path / "bad.pth")
    assert "decoder.head.0.weight" in str(err.value) and "extra_head.weight" in str(err.value)


def test_own_format_round_trip(tmp_path: Path) -> None:
    model = _randomise(create_model("sam2ms_nano"), 3)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    f = save_checkpoint(tmp_path / "x.pt", model, image_size=256, epoch=4, step=40, optimizer=opt, metrics={"f1": 0.5})
    raw = torch.load(f, weights_only=True)  # the format needs no pickled classes
    assert raw["model_name"] == "sam2ms_nano" and raw["epoch"] == 4 and raw["metrics"]["f1"] == 0.5
    assert set(raw["weights"]["trainable"]) < set(raw["weights"]["full"])
    assert not any(".block." in k for k in raw["weights"]["trainable"] if k.startswith("encoder."))
    loaded = create_model(None, checkpoint=f)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert not list(tmp_path.glob(".*.tmp")), "temp file left behind"


def test_checkpoint_for_another_model_is_refused(tmp_path: Path) -> None:
    f = save_checkpoint(tmp_path / "x.pt", create_model("sam2ms_nano"), image_size=64, epoch=0, step=0)
    with pytest.raises(UsageError, match="for sam2ms_nano, not sam2ms_hiera_t"):
        create_model("sam2ms_hiera_t", checkpoint=f)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken zip"])
def test_corrupt_file_is_a_usage_error(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "broken.pt"
    f.write_bytes(content)
    with pytest.raises(UsageError, match=r"broken.pt"):
        create_model("sam2ms_nano", checkpoint=f)


def test_sam2_file_given_as_sam2ms_checkpoint(tmp_path: Path) -> None:
    f = _official_sam2_file(tmp_path / "sam2.pt", create_model("sam2ms_nano").encoder.state_dict())
    with pytest.raises(UsageError, match="official SAM2 checkpoint"):
        create_model("sam2ms_nano", checkpoint=f)


def test_foreign_state_dict_is_refused(tmp_path: Path) -> None:
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "resnet.pth")
    with pytest.raises(UsageError, match="not a SAM2MS checkpoint"):
        read_checkpoint(tmp_path / "resnet.pth")
