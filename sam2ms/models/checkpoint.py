"""Checkpoint formats: ours (trainer output) and the authors' released SAM2MS weights.

Our format is a plain dict (loadable with ``torch.load(..., weights_only=True)``)::

    format="sam2ms-checkpoint", format_version, sam2ms_version, model_name, model_config,
    image_size, normalization, weights={"full": state_dict, "trainable": state_dict},
    epoch, step, optimizer, scheduler, scaler, rng, metrics, train_args

``weights["trainable"]`` holds the same tensors as the trainable part of ``full``; torch.save
stores a shared tensor once, so it costs nothing and lets tools read the small part alone.

The authors' weights are ``torch.save(SAM2MSNet.state_dict())``, possibly saved through
DataParallel (keys prefixed ``module.``). Our model mirrors theirs module for module, so their
import is the name mapping in :data:`AUTHOR_PREFIXES`.
"""

from __future__ import annotations

import io
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..artifacts import normalization_record
from ..errors import UsageError
from ..fileio import atomic_write

FORMAT = "sam2ms-checkpoint"
FORMAT_VERSION = 1

# (authors' key prefix, our key prefix). Trailing dots keep "x4_x3." apart from "x4_x3_x2.".
AUTHOR_PREFIXES: list[tuple[str, str]] = (
    [(f"rfb{i}.", f"drb{i}.") for i in range(1, 5)]
    + [(f"DRB{i}.", f"drb{i}.") for i in range(1, 5)]
    + [
        ("x4_x3_x2_x1.", "mssm.x4321."),
        ("x4_x3_x2.", "mssm.x432."),
        ("x3_x2_x1.", "mssm.x321."),
        ("x4_x3.", "mssm.x43."),
        ("x3_x2.", "mssm.x32."),
        ("x2_x1.", "mssm.x21."),
        ("level2.", "mssm.level2."),
        ("level1.", "mssm.level1."),
        ("x4_dem_4.", "decoder.reduce4."),
        ("output4.", "decoder.fuse3."),
        ("output2.", "decoder.fuse2."),
        ("output1.", "decoder.head."),
        ("encoder.", "encoder."),
    ]
)
# Modules that exist in the authors' network but that its forward pass never uses.
AUTHOR_UNUSED = ("output3.", "x5_dem_4.", "x5_x4_x3_x2_x1.")


@dataclass
class Checkpoint:
    """A checkpoint file as read: its kind, the model it is for, and its weights in our names."""

    path: Path
    kind: str  # "sam2ms" or "authors"
    model_name: str | None
    state_dict: dict[str, torch.Tensor]
    raw: dict[str, Any]


def torch_load(path: str | Path, missing_hint: str) -> Any:
    """``torch.load(weights_only=True)`` on CPU, with one-line UsageErrors for a missing file
    (``missing_hint`` says where to get it) or one that is not a readable checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: not found; {missing_hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to unpickle means a bad or foreign file
        first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise UsageError(
            f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {first_line}); is the file complete?"
        ) from None


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a sam2ms checkpoint or the authors' SAM2MS weights; anything else is a UsageError."""
    path = Path(path)
    raw = torch_load(path, "pass the .pt written by 'sam2ms train' or the authors' SAM2MS .pth")
    if isinstance(raw, dict) and raw.get("format") == FORMAT:
        if raw.get("format_version", 0) > FORMAT_VERSION:
            raise UsageError(
                f"{path}: checkpoint format {raw['format_version']} is newer than this "
                f"sam2ms ({__version__}) reads; upgrade sam2ms"
            )
        return Checkpoint(path, "sam2ms", raw["model_name"], raw["weights"]["full"], raw)
    if (
        isinstance(raw, dict)
        and isinstance(raw.get("model"), dict)
        and any(str(k).startswith("image_encoder.trunk.") for k in raw["model"])
    ):
        raise UsageError(
            f"{path}: this is an official SAM2 checkpoint (image encoder only); pass it "
            "as --sam2-ckpt / sam2_checkpoint=, not as a SAM2MS checkpoint"
        )
    if isinstance(raw, dict) and raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
        sd = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in raw.items()}
        if any(k.startswith(("rfb1.", "DRB1.")) for k in sd):
            return Checkpoint(path, "authors", _infer_author_model(sd), map_author_state_dict(sd), raw)
    raise UsageError(f"{path}: not a SAM2MS checkpoint (neither sam2ms's format nor the authors' SAM2MSNet state_dict)")


def _infer_author_model(sd: dict[str, torch.Tensor]) -> str | None:
    """Which Hiera size the authors' weights are for, from the first DRB's input width."""
    key = next(k for k in sd if re.fullmatch(r"(rfb|DRB)1\.branch0\.0\.conv\.weight", k))
    width = sd[key].shape[1]
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"encoder\.blocks\.(\d+)\.", k))}
    if width == 144:
        return "sam2ms_hiera_l"
    if width == 112:
        return "sam2ms_hiera_bp"
    if width == 96:
        return "sam2ms_hiera_t" if len(blocks) == 12 else "sam2ms_hiera_s"
    return None


def map_author_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the authors' keys to ours; unused modules are dropped, unknown keys kept as-is
    (so that loading reports them by name as unexpected).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.startswith(AUTHOR_UNUSED):
            continue
        for theirs, ours in AUTHOR_PREFIXES:
            if key.startswith(theirs):
                key = ours + key[len(theirs) :]
                break
        out[key] = value
    return out


def load_weights_into(model: nn.Module, ckpt: Checkpoint) -> None:
    """Load a checkpoint's weights, naming every missing, unexpected or mis-shaped key."""
    name = getattr(model, "name", None)
    if ckpt.model_name is not None and name is not None and ckpt.model_name != name:
        raise UsageError(f"{ckpt.path}: checkpoint is for {ckpt.model_name}, not {name}; use --model {ckpt.model_name}")
    ours = model.state_dict()
    missing = [k for k in ours if k not in ckpt.state_dict]
    unexpected = [k for k in ckpt.state_dict if k not in ours]
    shapes = [
        f"{k} {tuple(v.shape)} vs {tuple(ours[k].shape)}"
        for k, v in ckpt.state_dict.items()
        if k in ours and v.shape != ours[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_names(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches (file vs model): {_names(shapes)}")
    if problems:
        raise UsageError(f"{ckpt.path}: weights do not fit {name or 'the model'} — " + "; ".join(problems))
    model.load_state_dict(ckpt.state_dict, strict=True)


def _names(items: list[str], limit: int = 8) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states in types that ``weights_only`` loading accepts."""
    np_state: Any = np.random.get_state()  # the legacy tuple (name, keys, pos, has_gauss, cached)
    return {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    image_size: int,
    epoch: int,
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    metrics: dict[str, Any] | None = None,
    train_args: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a sam2ms checkpoint atomically (temp file + rename); ``extra`` adds top-level entries."""
    full = model.state_dict()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sam2ms_version": __version__,
        "model_name": model.name,
        "model_config": {"trunk": model.trunk_config},
        "image_size": image_size,
        "normalization": normalization_record(),
        "weights": {"full": full, "trainable": {k: v for k, v in full.items() if k not in frozen}},
        "epoch": epoch,
        "step": step,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state(),
        "metrics": metrics or {},
        "train_args": train_args or {},
        **(extra or {}),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write(path, lambda f: f.write(buf.getbuffer()))
