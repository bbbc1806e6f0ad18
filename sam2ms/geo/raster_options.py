"""The raster-conversion flags, shared by every command that reads imagery (train, eval, infer,
stats), so they read and behave the same everywhere (see :mod:`sam2ms.geo.radiometry`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .radiometry import Radiometry, from_flags

BANDS = typer.Option(
    None,
    "--bands",
    help="1-based bands as RGB, e.g. 3,2,1 (one band: grey). Default: the "
    "bands marked red/green/blue, else the first three.",
)
STRETCH = typer.Option(
    None,
    "--stretch",
    help="auto (none for 8-bit, percentile otherwise) | none | percentile | "
    "minmax, estimated per scene from a decimated read.",
)
PERCENTILES = typer.Option(None, "--percentiles", help="LOW,HIGH percentiles for --stretch percentile (default 2,98).")
SCALE = typer.Option(None, "--scale", help="Fixed LOW:HIGH raw values mapped to 0:255 for every scene, e.g. 0:2047.")
STATS = typer.Option(None, "--stats", help="A stats.json from 'sam2ms stats': every scene stretched alike.")
ROAD_WIDTH = typer.Option(
    4.0, "--road-width", help="Metres: GeoJSON road centre-lines (raw SpaceNet) become masks this wide."
)


def radiometry_from(
    bands: str | None,
    stretch: str | None,
    percentiles: str | None,
    scale: str | None,
    stats: Path | None,
    recorded: dict[str, Any] | None = None,
) -> Radiometry | None:
    """The conversion the flags ask for, starting from ``recorded`` (the model's); None when no
    flag was given and nothing is recorded, so a runtime can still fall back to its model's.
    """
    if recorded is None and all(v is None for v in (bands, stretch, percentiles, scale, stats)):
        return None
    return from_flags(bands, stretch, percentiles, scale, stats, Radiometry.from_dict(recorded))
