"""The frozen SAM2 Hiera trunk with an adapter around every block.

Trunk configurations are read from the ``sam2`` package's own SAM2.1 YAML files, so that
``sam2ms_hiera_*`` are exactly the official image-encoder trunks and official checkpoints load
into them. ``nano`` is ours: a reduced Hiera (not from the paper) for tests and CPU demos.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from typing_extensions import override

from ..errors import UsageError

# Official SAM2.1 config per trunk size (sam2/configs/sam2.1/<file>).
OFFICIAL_CONFIGS = {
    "t": "sam2.1_hiera_t.yaml",
    "s": "sam2.1_hiera_s.yaml",
    "bp": "sam2.1_hiera_b+.yaml",
    "l": "sam2.1_hiera_l.yaml",
}

# A reduced Hiera for tests and CPU demos: widths 32/64/128/256, 5 blocks, one global-attention
# block. About 0.9 M trunk parameters; trains on 2 CPU cores in minutes at 256 x 256.
NANO_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "num_heads": 1,
    "stages": [1, 1, 2, 1],
    "global_att_blocks": [3],
    "window_pos_embed_bkg_spatial_size": [4, 4],
    "window_spec": [8, 4, 4, 2],
}

ADAPTER_HIDDEN = 32


def official_trunk_config(size: str) -> dict[str, Any]:
    """The ``model.image_encoder.trunk`` section of the official SAM2.1 config, as plain kwargs."""
    from omegaconf import OmegaConf

    path = resources.files("sam2") / "configs" / "sam2.1" / OFFICIAL_CONFIGS[size]
    cfg: Any = OmegaConf.to_container(OmegaConf.create(path.read_text()), resolve=True)
    trunk = dict(cfg["model"]["image_encoder"]["trunk"])
    trunk.pop("_target_")
    return trunk


class Adapter(nn.Module):
    """``block(x + MLP(x))`` with MLP = Linear(dim, 32) - GELU - Linear(32, dim) - GELU.

    The authors' code uses GELU (the paper says ReLU); we follow the code so their weights fit.
    Sub-module names ``block`` and ``prompt_learn`` are theirs too.
    """

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block
        dim = int(block.get_submodule("attn.qkv").in_features)  # type: ignore[arg-type]
        self.prompt_learn = nn.Sequential(
            nn.Linear(dim, ADAPTER_HIDDEN), nn.GELU(), nn.Linear(ADAPTER_HIDDEN, dim), nn.GELU()
        )

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.block(x + self.prompt_learn(x))
        return out


def build_trunk(config: dict[str, Any]) -> nn.Module:
    """A Hiera trunk from ``sam2`` with frozen weights and a trainable adapter around each block."""
    from sam2.modeling.backbones.hieradet import Hiera

    trunk = Hiera(**config)
    for p in trunk.parameters():
        p.requires_grad = False
    trunk.blocks = nn.Sequential(*(Adapter(b) for b in trunk.blocks))
    return cast(nn.Module, trunk)


def trunk_channels(trunk: nn.Module) -> list[int]:
    """Output widths at strides 4, 8, 16, 32."""
    hiera: Any = trunk  # sam2's Hiera: blocks and stage_ends are plain attributes
    return [hiera.blocks[i].block.dim_out for i in hiera.stage_ends]


def load_sam2_checkpoint(trunk: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Load an official SAM2/SAM2.1 checkpoint (``{"model": state_dict}``, keys
    ``image_encoder.trunk.*``) into the adapted trunk. Returns the trunk keys it did not fill.

    Adapter weights are not in such a file and stay as initialised; any other trunk key that is
    missing, or a shape that differs (a checkpoint of another size), is an error.
    """
    from .checkpoint import torch_load

    path = Path(path)
    ckpt = torch_load(path, "download e.g. sam2.1_hiera_large.pt from the SAM2 release page and pass its path")
    sd = ckpt.get("model") if isinstance(ckpt, dict) else None
    prefix = "image_encoder.trunk."
    if not isinstance(sd, dict) or not any(k.startswith(prefix) for k in sd):
        raise UsageError(
            f"{path}: not an official SAM2 checkpoint (expected {{'model': ...}} with "
            f"'{prefix}*' keys); a SAM2MS checkpoint goes to --ckpt/checkpoint= instead"
        )
    ours = trunk.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if name.startswith("blocks."):
            idx, rest = name[len("blocks.") :].split(".", 1)
            name = f"blocks.{idx}.block.{rest}"
        if name not in ours:
            raise UsageError(f"{path}: unexpected trunk key {key!r}; is it the checkpoint of another SAM2 size?")
        if ours[name].shape != value.shape:
            raise UsageError(
                f"{path}: {key} has shape {tuple(value.shape)}, the model expects "
                f"{tuple(ours[name].shape)}; use the checkpoint of the matching SAM2 size"
            )
        mapped[name] = value
    missing = [k for k in ours if k not in mapped and ".prompt_learn." not in k]
    if missing:
        raise UsageError(
            f"{path}: trunk keys missing from the checkpoint: {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}"
        )
    trunk.load_state_dict(mapped, strict=False)
    return {"adapters_not_in_file": [k for k in ours if ".prompt_learn." in k]}
