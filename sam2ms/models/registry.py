"""A timm-style model registry: ``@register_model`` factories and :func:`create_model`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from ..errors import UsageError

_MODELS: dict[str, Callable[[], nn.Module]] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_model(fn: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    """Register a factory under its function name; its docstring's first line describes it."""
    _MODELS[fn.__name__] = fn
    _DESCRIPTIONS[fn.__name__] = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
    return fn


def list_models() -> list[str]:
    """Registered model names."""
    return sorted(_MODELS)


def describe_model(name: str) -> str:
    """The first line of the model factory's docstring (what ``sam2ms info`` prints)."""
    return _DESCRIPTIONS[_check_name(name)]


def _check_name(name: str) -> str:
    if name not in _MODELS:
        raise UsageError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return name


def create_model(
    name: str | None, *, sam2_checkpoint: str | Path | None = None, checkpoint: str | Path | None = None
) -> nn.Module:
    """Build a registered model, optionally loading weights.

    * ``sam2_checkpoint``: an official SAM2/SAM2.1 file, loaded into the frozen trunk.
    * ``checkpoint``: a sam2ms checkpoint, or the authors' released SAM2MS weights. With a
      sam2ms checkpoint, ``name`` may be None (it is read from the file). Applied after
      ``sam2_checkpoint``, so a full checkpoint wins.
    """
    from .checkpoint import load_weights_into, read_checkpoint

    ckpt = read_checkpoint(checkpoint) if checkpoint is not None else None
    if name is None:
        if ckpt is None or ckpt.model_name is None:
            raise UsageError("no model name given and none can be read from the checkpoint; pass --model NAME")
        name = ckpt.model_name
    model = _MODELS[_check_name(name)]()
    if sam2_checkpoint is not None:
        from .hiera import load_sam2_checkpoint

        load_sam2_checkpoint(model.get_submodule("encoder"), sam2_checkpoint)
    if ckpt is not None:
        load_weights_into(model, ckpt)
    return model
