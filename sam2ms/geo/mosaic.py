"""``sam2ms mosaic``: a GDAL VRT of many GeoTIFFs, so a mosaic runs as one scene.

Tiled deliveries cut roads at file borders; inferring each file alone leaves seams there. A VRT
is GDAL's own virtual mosaic (an XML file pointing into the members), read by window like any
GeoTIFF, so windows straddle file borders and the blend crosses them. This writes what
``gdalbuildvrt`` writes for members on one pixel grid, for hosts with rasterio but no GDAL tools.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import typer

from ..console import JSON_HELP, emit
from ..deps import require
from ..errors import UsageError
from ..fileio import atomic_write
from .rasters import find_inputs

_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "float32": "Float32",
    "float64": "Float64",
}


def _members(paths: list[Path]) -> list[dict[str, Any]]:
    rasterio = require("rasterio", "sam2ms mosaic")
    members = []
    for path in paths:
        try:
            with rasterio.open(path) as ds:
                members.append(
                    {
                        "path": path,
                        "crs": ds.crs,
                        "transform": ds.transform,
                        "width": ds.width,
                        "height": ds.height,
                        "count": ds.count,
                        "dtype": ds.dtypes[0],
                        "nodata": ds.nodata,
                        "colorinterp": [c.name for c in ds.colorinterp],
                    }
                )
        except Exception as exc:  # noqa: BLE001 - GDAL's errors for unreadable files
            raise UsageError(f"{path}: cannot read ({exc}); remove it from the mosaic") from None
    first = members[0]
    for m in members[1:]:
        for key in ("crs", "count", "dtype", "nodata"):
            if m[key] != first[key] and not (key == "nodata" and _both_nan(m[key], first[key])):
                raise UsageError(
                    f"{m['path']}: {key} {m[key]} differs from {first['path'].name}'s {first[key]}; "
                    "a mosaic needs one CRS, band count, data type and nodata (gdalwarp them first)"
                )
        if (
            (m["transform"].a, m["transform"].e) != (first["transform"].a, first["transform"].e)
            or m["transform"].b
            or m["transform"].d
        ):
            raise UsageError(
                f"{m['path']}: pixel size or rotation differs from {first['path'].name}'s; "
                "resample the members to one grid first (gdalwarp -tr -tap)"
            )
    return members


def _both_nan(a: Any, b: Any) -> bool:
    """NaN nodata (float rasters) equals itself here, though not under ``!=``."""
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


def build_vrt(paths: list[Path], out: Path) -> dict[str, Any]:
    """Write the VRT of ``paths`` (one CRS, pixel size, band count and data type; members on one
    pixel grid) to ``out``; returns its size and members.
    """
    members = _members(paths)
    first = members[0]
    rx, ry = first["transform"].a, first["transform"].e  # ry < 0 (north up)
    left = min(m["transform"].c for m in members)
    top = max(m["transform"].f for m in members)
    offsets = []
    for m in members:
        fx, fy = (m["transform"].c - left) / rx, (m["transform"].f - top) / ry
        if abs(fx - round(fx)) > 1e-3 or abs(fy - round(fy)) > 1e-3:
            raise UsageError(
                f"{m['path']}: not on the pixel grid of the others (offset {fx:.3f}, {fy:.3f} px); "
                "resample it first (gdalwarp -tap)"
            )
        offsets.append((round(fx), round(fy)))
    width = max(x + m["width"] for (x, _), m in zip(offsets, members))
    height = max(y + m["height"] for (_, y), m in zip(offsets, members))
    root = ET.Element("VRTDataset", rasterXSize=str(width), rasterYSize=str(height))
    if first["crs"] is not None:
        ET.SubElement(root, "SRS", dataAxisToSRSAxisMapping="1,2").text = first["crs"].to_wkt()
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(v) for v in (left, rx, 0.0, top, 0.0, ry))
    nodata = first["nodata"]
    for band in range(1, first["count"] + 1):
        el = ET.SubElement(root, "VRTRasterBand", dataType=_GDAL_TYPES[first["dtype"]], band=str(band))
        if nodata is not None:
            ET.SubElement(el, "NoDataValue").text = repr(nodata)
        ET.SubElement(el, "ColorInterp").text = first["colorinterp"][band - 1].capitalize()
        for (x, y), m in zip(offsets, members):
            src = ET.SubElement(el, "ComplexSource" if nodata is not None else "SimpleSource")
            rel = os.path.relpath(Path(m["path"]).resolve(), out.resolve().parent)
            ET.SubElement(src, "SourceFilename", relativeToVRT="1").text = rel
            ET.SubElement(src, "SourceBand").text = str(band)
            ET.SubElement(src, "SrcRect", xOff="0", yOff="0", xSize=str(m["width"]), ySize=str(m["height"]))
            ET.SubElement(src, "DstRect", xOff=str(x), yOff=str(y), xSize=str(m["width"]), ySize=str(m["height"]))
            if nodata is not None:
                ET.SubElement(src, "NODATA").text = repr(nodata)
    ET.indent(root)
    payload = ET.tostring(root)
    atomic_write(out, lambda f: f.write(payload))
    return {
        "output": str(out),
        "width": width,
        "height": height,
        "bands": first["count"],
        "dtype": first["dtype"],
        "nodata": nodata,
        "members": [str(m["path"]) for m in members],
    }


def mosaic_command(
    sources: list[Path] = typer.Argument(..., metavar="INPUT...", help="GeoTIFFs, or folders of them."),
    output: Path = typer.Option(..., "-o", "--output", help="The .vrt file to write."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Mosaic GeoTIFFs on one pixel grid into a VRT that sam2ms-infer runs as one scene (no seams)."""
    if output.suffix.lower() != ".vrt":
        raise UsageError(f"-o {output}: give the mosaic a .vrt name")
    paths = list(dict.fromkeys(p for s in sources for p in find_inputs(s) if p.suffix.lower() in (".tif", ".tiff")))
    if not paths:
        raise UsageError("no GeoTIFFs (.tif/.tiff) among the inputs; pass the files to mosaic")
    summary = build_vrt(paths, output)
    emit(
        summary,
        as_json,
        [("output", str(output)), ("size", f"{summary['width']} x {summary['height']}"), ("members", str(len(paths)))],
    )
