"""Road centre-lines from GeoJSON written by other tools, checked field by field.

SpaceNet's labels, another model's proposals and our own graphs arrive as GeoJSON
FeatureCollections. Every feature is checked before any geometry reaches GDAL or the scorer: its
geometry must be a (Multi)LineString of finite 2D/3D positions inside the coordinate system's
domain (longitude and latitude in range for lon/lat data). Points (the nodes our graph writer adds
beside its edges) carry no road and are skipped. A Polygon, a missing geometry, NaN or 1e300 is
refused by the feature's index (exit 2) instead of being scored as "no road" or crashing a
reprojection. A CRS is named by an authority code or WKT, never by a file name or PROJ string
(GDAL would open the file), see :func:`check_crs_name`.

numpy-free: the data layouts import this on every host.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .errors import UsageError
from .memory import budget_bytes
from .schema import SchemaError, describe, key, load_json, record, string

LINE_TYPES = ("LineString", "MultiLineString")
SKIPPED_TYPES = ("Point", "MultiPoint")  # graph nodes beside the edges
LONLAT = "EPSG:4326"  # RFC 7946: GeoJSON without a crs member is WGS 84 lon/lat
#: A foreign member (RFC 7946 §6.1) our writer adds to a graph of a scene without georeference:
#: its coordinates are pixels (column, row), not lon/lat, and are scored as such.
PIXELS_MEMBER = "pixel_coordinates"
#: The largest coordinate in a projected CRS or in pixels: beyond every Earth-sized projection.
MAX_PROJECTED = 1e9
_LONLAT_NAMES = {
    "EPSG:4326",
    "OGC:CRS84",
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "urn:ogc:def:crs:EPSG::4326",
}
_AUTHORITY = re.compile(r"(EPSG|ESRI|IAU_2015|OGC):\w+|urn:ogc:def:crs:(EPSG|OGC|ESRI):[0-9.]*:\w+")
_WKT = re.compile(
    r"(PROJCS|GEOGCS|GEOCCS|COMPD_CS|PROJCRS|GEOGCRS|GEODCRS|BOUNDCRS|COMPOUNDCRS|ENGCRS|LOCAL_CS)"
    r"\s*\[",
    re.IGNORECASE,
)
FIX = "fix the file (roads are GeoJSON LineStrings) or export it again"


def check_crs_name(name: Any, where: str) -> str:
    """A CRS named as GDAL may safely parse it: an authority code (``EPSG:32633``, an OGC URN) or
    WKT. Anything else (a path, a PROJ string with ``+init=``) is refused.
    """
    if not isinstance(name, str) or len(name) > 1 << 16 or not (_AUTHORITY.fullmatch(name) or _WKT.match(name)):
        raise SchemaError(where, f"expected a CRS as an authority code (EPSG:4326) or WKT, got {describe(name)}")
    return name


def is_lonlat(crs_name: str) -> bool:
    """Whether coordinates in ``crs_name`` are longitude/latitude degrees (rasterio decides names
    that are not WGS 84's own; without rasterio only WGS 84's are known).
    """
    if crs_name in _LONLAT_NAMES:
        return True
    try:
        from rasterio.crs import CRS
        from rasterio.errors import CRSError
    except ImportError:
        return False
    try:
        return bool(CRS.from_user_input(crs_name).is_geographic)
    except (CRSError, ValueError) as exc:  # ValueError: "EPSG:nope" (found by the fuzz test)
        raise UsageError(f"CRS {crs_name[:60]!r}: GDAL does not know it ({exc}); name an EPSG code") from None


def check_position(value: Any, where: str, lonlat: bool) -> list[float]:
    """An (x, y[, z]) position of finite numbers in the CRS's domain -> [x, y]."""
    if (
        not isinstance(value, list)
        or not 2 <= len(value) <= 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise SchemaError(where, f"expected a position [x, y] or [x, y, z] of numbers, got {describe(value)}")
    x, y = float(value[0]), float(value[1])
    if not (abs(x) <= MAX_PROJECTED and abs(y) <= MAX_PROJECTED):  # also NaN and infinities
        raise SchemaError(where, f"coordinate ({x:g}, {y:g}) is not a finite number within ±{MAX_PROJECTED:g}")
    if lonlat and not (-180.0 <= x <= 180.0 and -90.0 <= y <= 90.0):
        raise SchemaError(where, f"longitude/latitude ({x:g}, {y:g}) outside [-180, 180] x [-90, 90]")
    return [x, y]


def check_line(value: Any, where: str, lonlat: bool) -> list[list[float]]:
    """A LineString's coordinates: empty (an empty geometry), or two positions or more."""
    if not isinstance(value, list) or len(value) == 1:
        raise SchemaError(where, f"expected a list of two positions or more, got {describe(value)}")
    return [check_position(p, key(where, i), lonlat) for i, p in enumerate(value)]


def _geometry(geom: Any, where: str, lonlat: bool, null_is_empty: bool) -> dict[str, Any] | None:
    """A feature's road geometry (2D), None for a skipped or empty one."""
    if geom is None:
        if null_is_empty:
            return None
        raise SchemaError(where, "no geometry (null); a road feature needs a LineString")
    if not isinstance(geom, dict):
        raise SchemaError(where, f"expected a geometry object, got {describe(geom)}")
    kind = geom.get("type")
    if kind in SKIPPED_TYPES:
        return None
    if kind not in LINE_TYPES:
        shown = kind if isinstance(kind, str) and len(kind) < 40 else describe(kind)
        raise SchemaError(
            key(where, "type"),
            f"{shown}: roads must be LineString or MultiLineString "
            "(a Polygon is an area: turn road polygons into centre-lines first)",
        )
    coords = geom.get("coordinates")
    where = key(where, "coordinates")
    if kind == "LineString":
        line = check_line(coords, where, lonlat)
        return {"type": kind, "coordinates": line} if line else None
    if not isinstance(coords, list):
        raise SchemaError(where, f"expected a list of LineString coordinates, got {describe(coords)}")
    parts = [part for i, c in enumerate(coords) if (part := check_line(c, key(where, i), lonlat))]
    return {"type": kind, "coordinates": parts} if parts else None


_CRS_MEMBER = record(
    {"type": string(), "properties": record({"name": check_crs_name}, required=("name",), other=lambda v, w: v)},
    required=("properties",),
)


def parse_lines(data: Any, source: str, labels: bool = False) -> tuple[list[dict[str, Any]], str | None]:
    """The road geometries of a parsed GeoJSON document (see :func:`read_lines`)."""
    try:
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            raise SchemaError("type", f"expected a GeoJSON FeatureCollection, got {describe(data)}")
        crs: str | None = LONLAT
        if data.get(PIXELS_MEMBER) is not None:
            if data[PIXELS_MEMBER] is not True or data.get("crs") is not None:
                raise SchemaError(
                    PIXELS_MEMBER, f"expected true, and no crs member beside it, got {describe(data[PIXELS_MEMBER])}"
                )
            if labels:
                raise SchemaError(
                    PIXELS_MEMBER,
                    "centre-lines in pixel coordinates; dataset labels must be "
                    "georeferenced (a crs member, or lon/lat)",
                )
            crs = None
        elif data.get("crs") is not None:
            crs = _CRS_MEMBER(data["crs"], "crs")["properties"]["name"]
        features = data.get("features")
        if not isinstance(features, list):
            raise SchemaError("features", f"expected a list of features, got {describe(features)}")
        lonlat = crs is not None and is_lonlat(crs)
        lines = []
        for i, feature in enumerate(features):
            where = f"feature {i}"
            if not isinstance(feature, dict) or "geometry" not in feature:
                raise SchemaError(where, f"expected a Feature with a geometry, got {describe(feature)}")
            geom = _geometry(feature["geometry"], key(where, "geometry"), lonlat, null_is_empty=labels)
            if geom is not None:
                lines.append(geom)
    except SchemaError as exc:
        raise UsageError(f"{source}: {exc}; {FIX}") from None
    return lines, crs


def read_lines(path: Path, labels: bool = False) -> tuple[list[dict[str, Any]], str | None]:
    """The (Multi)LineString geometries of a GeoJSON FeatureCollection (2D; empty ones dropped)
    and their CRS: a legacy ``crs`` member's name, None for a graph in pixel coordinates
    (:data:`PIXELS_MEMBER`), else lon/lat (RFC 7946). ``labels``: a dataset's centre-lines, where a
    null geometry is an empty one (GDAL writes SpaceNet's ``LINESTRING EMPTY``, an image without
    roads, as null) and pixel coordinates are refused; else (a network to score) a null geometry is
    refused. The file may take a sixteenth of the memory budget (Python's parsed JSON is about ten
    times its text).
    """
    data = load_json(path, str(path), FIX, max_bytes=max(budget_bytes() // 16, 1 << 20))
    return parse_lines(data, str(path), labels)
