"""The registered SAM2MS variants (one per SAM2.1 Hiera size, plus a tiny test model)."""

from __future__ import annotations

from .hiera import NANO_CONFIG, official_trunk_config
from .net import SAM2MS
from .registry import register_model


@register_model
def sam2ms_hiera_t() -> SAM2MS:
    """SAM2MS on the SAM2.1 Hiera-T trunk (96/192/384/768 channels)."""
    return SAM2MS(official_trunk_config("t"), name="sam2ms_hiera_t")


@register_model
def sam2ms_hiera_s() -> SAM2MS:
    """SAM2MS on the SAM2.1 Hiera-S trunk (96/192/384/768 channels)."""
    return SAM2MS(official_trunk_config("s"), name="sam2ms_hiera_s")


@register_model
def sam2ms_hiera_bp() -> SAM2MS:
    """SAM2MS on the SAM2.1 Hiera-B+ trunk (112/224/448/896 channels)."""
    return SAM2MS(official_trunk_config("bp"), name="sam2ms_hiera_bp")


@register_model
def sam2ms_hiera_l() -> SAM2MS:
    """SAM2MS on the SAM2.1 Hiera-L trunk (144/288/576/1152 channels), the paper's model."""
    return SAM2MS(official_trunk_config("l"), name="sam2ms_hiera_l")


@register_model
def sam2ms_nano() -> SAM2MS:
    """Reduced Hiera (32/64/128/256 channels, 5 blocks) for tests and CPU demos; not from the paper."""
    return SAM2MS(dict(NANO_CONFIG), name="sam2ms_nano")
