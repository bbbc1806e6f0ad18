"""Road labels as boolean masks: raster masks, and vector centre-lines buffered in metres.

SpaceNet distributes roads as GeoJSON LineStrings in lon/lat; the paper (like CRESI and
SpaceNet's own baseline) trains on masks made by buffering each centre-line by a fixed width in
metres. :func:`rasterize_roads` burns the lines into the image's grid and widens them with a
Euclidean distance transform whose pixel spacing is in metres along each axis, so the width is
right in metres whether the image is in degrees (EPSG:4326, where a pixel is narrower east-west
than north-south away from the equator) or in a projected CRS.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from .deps import require
from .errors import UsageError
from .geo.rasters import open_image
from .vectors import read_lines

DEFAULT_ROAD_WIDTH = 4.0  # metres: a 2 m buffer each side of the centre-line (CRESI / SpaceNet baseline)
VECTOR_SUFFIXES = (".geojson", ".json")


def read_mask(path: str | Path) -> np.ndarray:
    """Read a raster road label as a boolean H x W mask (road = pixel value > 127 in any band)."""
    arr = np.asarray(open_image(Path(path)))
    if arr.ndim == 3:
        arr = arr.max(axis=2)
    if arr.dtype == bool:
        return arr
    return arr > 127


def pixel_metres(transform: Any, crs: Any, height: int) -> tuple[float, float]:
    """(row, column) pixel spacing in metres at the raster's centre."""
    if crs is None:
        raise UsageError("vector road labels need a georeferenced image (CRS and transform) to be rasterised")
    if crs.is_geographic:
        lat = math.radians(transform.f + transform.e * height / 2)
        # WGS84 metres per degree of latitude and of longitude at ``lat``
        m_lat = 111132.92 - 559.82 * math.cos(2 * lat) + 1.175 * math.cos(4 * lat)
        m_lon = 111412.84 * math.cos(lat) - 93.5 * math.cos(3 * lat)
        return abs(transform.e) * m_lat, abs(transform.a) * m_lon
    unit = crs.linear_units_factor[1]
    return abs(transform.e) * unit, abs(transform.a) * unit


def rasterize_roads(path: Path, height: int, width: int, transform: Any, crs: Any, road_width: float) -> np.ndarray:
    """A boolean H x W mask of the GeoJSON centre-lines in ``path`` buffered to ``road_width`` metres."""
    require("rasterio", "vector road labels")
    require("scipy", "vector road labels")
    from rasterio.crs import CRS
    from rasterio.features import rasterize
    from rasterio.warp import transform_geom
    from scipy.ndimage import distance_transform_edt

    lines, lines_crs = read_lines(path, labels=True)
    if not lines:
        return np.zeros((height, width), bool)
    try:
        spacing = pixel_metres(transform, crs, height)
    except UsageError as exc:
        raise UsageError(f"{path}: {exc}") from None
    if crs != CRS.from_user_input(lines_crs):
        lines = [transform_geom(lines_crs, crs, g) for g in lines]
    burnt = rasterize(
        [(g, 1) for g in lines], out_shape=(height, width), transform=transform, all_touched=True, dtype="uint8"
    )
    if not burnt.any():
        return np.zeros((height, width), bool)
    return np.asarray(distance_transform_edt(burnt == 0, sampling=spacing) <= road_width / 2)
