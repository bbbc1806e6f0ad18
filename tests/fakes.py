"""Typed, seeded fake data of the real formats, shared by the tests (torchgeo's habit): files of
the very layouts and encodings the real datasets use, small enough for a CPU test suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LON, LAT, RES, SIZE = -115.30, 36.20, 2.7e-6, 1300  # Las Vegas, ~0.3 m pixels, SpaceNet's 1300² images
ROW, COL = 300, 900  # an east-west road through row 300 and a north-south road through column 900
RELEASES = {
    "sn3": (
        "AOI_2_Vegas/PS-RGB/SN3_roads_train_AOI_2_Vegas_PS-RGB_img{n}.tif",
        "AOI_2_Vegas/geojson_roads/SN3_roads_train_AOI_2_Vegas_geojson_roads_img{n}.geojson",
    ),
    "original": (
        "AOI_2_Vegas_Roads_Train/RGB-PanSharpen/RGB-PanSharpen_AOI_2_Vegas_img{n}.tif",
        "AOI_2_Vegas_Roads_Train/geojson/spacenetroads/spacenetroads_AOI_2_Vegas_img{n}.geojson",
    ),
}


def _centre(row: float, col: float) -> list[float]:
    """lon, lat (and a z, as SpaceNet writes) of a pixel centre."""
    return [LON + (col + 0.5) * RES, LAT - (row + 0.5) * RES, 0.0]


def make_spacenet(root: Path, release: str, n: int = 1) -> None:
    """SpaceNet 3 roads as released: a 16-bit EPSG:4326 1300² image and its GeoJSON centre-lines."""
    import rasterio
    from rasterio.transform import from_origin

    image_t, label_t = RELEASES[release]
    rng = np.random.default_rng(n)
    image, label = root / image_t.format(n=n), root / label_t.format(n=n)
    image.parent.mkdir(parents=True, exist_ok=True)
    label.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        image,
        "w",
        driver="GTiff",
        height=SIZE,
        width=SIZE,
        count=3,
        dtype="uint16",
        crs="EPSG:4326",
        transform=from_origin(LON, LAT, RES, RES),
        compress="deflate",
    ) as ds:
        ds.write(rng.integers(100, 2000, (3, SIZE, SIZE), dtype=np.uint16))
    features = [
        {
            "type": "Feature",
            "properties": {"road_type": "5"},
            "geometry": {"type": "LineString", "coordinates": [_centre(ROW, 0), _centre(ROW, SIZE - 1)]},
        },
        {
            "type": "Feature",
            "properties": {"road_type": "6"},
            "geometry": {"type": "MultiLineString", "coordinates": [[_centre(0, COL), _centre(SIZE - 1, COL)]]},
        },
        {"type": "Feature", "properties": {}, "geometry": None},  # SpaceNet has empty geometries too
    ]
    label.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
