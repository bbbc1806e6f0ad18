"""The calibration cache (``--calib-cache F``): activation ranges per tensor, tied to one model
(its SHA-256) and one set of settings, so that a re-run writes a bit-identical INT8 model without
reading calibration data, and a cache made for anything else is refused, never silently reused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sam2ms.errors import UsageError
from sam2ms.fileio import read_format_json, write_json

CACHE_FORMAT = "sam2ms-calibration-cache"


def cache_settings(
    method: str, tiles: int, seed: int, excluded: list[str], calibrator: dict[str, Any], quantized_ops: tuple[str, ...]
) -> dict[str, Any]:
    """What must match for a cache to be reused."""
    return {
        "method": method,
        "tiles": tiles,
        "seed": seed,
        "symmetric": True,
        "per_channel": True,
        "calibrator": calibrator,
        "quantized_ops": list(quantized_ops),
        "excluded_nodes": sorted(excluded),
    }


def read_cache(path: Path, model_hash: str, settings: dict[str, Any]) -> dict[str, Any] | None:
    """Our cache file if it exists; refused (UsageError) when it belongs to another model/settings."""
    if not path.is_file():
        return None
    data = read_format_json(path, CACHE_FORMAT, f"--calib-cache {path}", "delete it to recalibrate")
    if data.get("model_sha256") != model_hash:
        raise UsageError(
            f"--calib-cache {path}: made for another model (sha256 {data.get('model_sha256', '?')[:12]}…, "
            f"this one is {model_hash[:12]}…); use another cache file or delete it"
        )
    if data.get("settings") != settings:
        raise UsageError(
            f"--calib-cache {path}: made with other settings {data.get('settings')}; use another "
            "cache file or delete it"
        )
    return data


def write_cache(path: Path, model_hash: str, settings: dict[str, Any], ranges: dict[str, Any]) -> None:
    """The cache file: ORT's ranges, and the symmetric scales for people reading it."""
    write_json(
        path,
        {
            "format": CACHE_FORMAT,
            "model_sha256": model_hash,
            "settings": settings,
            "scales": _scales(ranges),
            "ort_ranges": ranges,
        },
    )


def _scales(ranges: dict[str, Any]) -> dict[str, float]:
    """Symmetric INT8 scale per tensor (max |range| / 127), for people reading the cache."""
    import numpy as np

    def value(x: Any) -> Any:  # ORT serialises numpy scalars as {"data": ..., "dtype": ...}
        return x["data"] if isinstance(x, dict) else x

    return {
        name: float(np.max(np.abs([value(v["lowest"]), value(v["highest"])]))) / 127.0
        for name, v in ranges.get("data", {}).items()
        if isinstance(v, dict) and "lowest" in v
    }
