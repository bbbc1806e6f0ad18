"""Road graphs in and out: GeoJSON and GraphML in the scene's CRS, and metric copies for scoring.

* GeoJSON out: a FeatureCollection of the edges as LineStrings (``u``, ``v``, ``length_m``,
  ``gap_closed``) and the nodes as Points (``node``, ``degree``, ``kind``: junction or end), in
  the scene's CRS, named by a legacy ``crs`` member as QGIS reads it (RFC 7946 lon/lat when the
  scene is in EPSG:4326).
* GraphML out (networkx): node ``x``/``y``, edge ``length_m`` and ``geometry`` as WKT, graph
  ``crs`` — what routing tools import.
* In: either file back, or any GeoJSON of (Multi)LineStrings (SpaceNet's labels), built into a
  graph as the APLS reference builds it (:func:`sam2ms.roads.lines.lines_to_graph`).
* Metric: APLS needs metres. :func:`to_metric` reprojects a graph to the UTM zone of a reference
  point (as the reference does with ``utm``), through GDAL (rasterio); a projected CRS in
  metres is kept as it is.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.deps import require
from sam2ms.errors import UsageError
from sam2ms.fileio import atomic_write, write_json
from sam2ms.memory import budget_bytes, human_bytes
from sam2ms.schema import SchemaError
from sam2ms.vectors import PIXELS_MEMBER, check_crs_name, check_line, check_position, is_lonlat, read_lines

from . import geometry
from .lines import lines_to_graph

GRAPH_SUFFIXES = (".geojson", ".json", ".graphml")


def graph_to_geojson(graph: Any, crs: Any = None) -> dict[str, Any]:
    """A road graph as a GeoJSON FeatureCollection of LineStrings (``crs`` named where known)."""
    features: list[dict[str, Any]] = []
    for u, v, data in graph.edges(data=True):
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "u": u,
                    "v": v,
                    "length_m": round(data["length"], 3),
                    "gap_closed": bool(data.get("gap_closed", False)),
                },
                "geometry": {"type": "LineString", "coordinates": np.asarray(data["geometry"]).tolist()},
            }
        )
    for n, data in graph.nodes(data=True):
        degree = graph.degree(n)
        features.append(
            {
                "type": "Feature",
                "properties": {"node": n, "degree": degree, "kind": "end" if degree == 1 else "junction"},
                "geometry": {"type": "Point", "coordinates": [data["x"], data["y"]]},
            }
        )
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs is not None:
        collection["crs"] = {"type": "name", "properties": {"name": str(crs)}}
    else:  # a scene without georeference: say so, or readers take the pixels for lon/lat
        collection[PIXELS_MEMBER] = True
    return collection


def write_graph(graph: Any, path: Path, crs: Any = None) -> Path:
    """GeoJSON or GraphML by the suffix, atomically."""
    if path.suffix.lower() == ".graphml":
        nx = require("networkx", "GraphML output")
        out = nx.MultiGraph(crs=str(crs) if crs is not None else "")
        for n, data in graph.nodes(data=True):
            out.add_node(n, x=float(data["x"]), y=float(data["y"]))
        for u, v, data in graph.edges(data=True):
            out.add_edge(
                u,
                v,
                length_m=float(data["length"]),
                geometry=_wkt(data["geometry"]),
                gap_closed=bool(data.get("gap_closed", False)),
            )
        payload = "\n".join(nx.generate_graphml(out)).encode()
        return atomic_write(path, lambda f: f.write(payload))
    return write_json(path, graph_to_geojson(graph, crs))


def _wkt(coords: np.ndarray) -> str:
    return "LINESTRING (" + ", ".join(f"{x!r} {y!r}" for x, y in np.asarray(coords, float).tolist()) + ")"


def read_graph(path: Path) -> tuple[Any, Any]:
    """(graph, CRS) of a GeoJSON or GraphML road network; GeoJSON without a ``crs`` member is
    lon/lat (RFC 7946); a graph written without georeference has CRS None (pixel coordinates).
    """
    if not path.is_file():
        raise UsageError(f"{path}: not found; pass a GeoJSON or GraphML road network")
    if path.suffix.lower() == ".graphml":
        nx = require("networkx", "GraphML input")
        limit = max(budget_bytes() // 16, 1 << 20)  # parsed XML takes about ten times its text
        if path.stat().st_size > limit:
            raise UsageError(
                f"{path}: {human_bytes(path.stat().st_size)} of GraphML, more than the "
                f"{human_bytes(limit)} this machine can parse now; score it on a larger machine"
            )
        try:
            raw = nx.read_graphml(path, force_multigraph=True)
        except Exception as exc:  # noqa: BLE001 - networkx/XML parser errors
            raise UsageError(f"{path}: unreadable GraphML ({exc}); write it with sam2ms graph") from None
        try:
            return _checked_graph(nx, raw)
        except SchemaError as exc:
            raise UsageError(f"{path}: {exc}; write it with sam2ms graph") from None
    shapes, crs = read_lines(path)
    lines = [
        np.asarray(part, float)
        for shape in shapes
        for part in ([shape["coordinates"]] if shape["type"] == "LineString" else shape["coordinates"])
        if part
    ]
    return lines_to_graph(lines), crs


def _checked_graph(nx: Any, raw: Any) -> tuple[Any, Any]:
    """A GraphML graph as :func:`read_graph` returns it, every node position and edge geometry
    checked as GeoJSON's are (:mod:`sam2ms.vectors`).
    """
    crs = raw.graph.get("crs") or None
    lonlat = crs is not None and is_lonlat(check_crs_name(crs, "graph crs"))
    graph = nx.MultiGraph()
    for n, data in raw.nodes(data=True):
        x, y = check_position([data.get("x"), data.get("y")], f"node {str(n)[:40]!r}", lonlat)
        graph.add_node(n, x=x, y=y)
    for i, (u, v, data) in enumerate(raw.edges(data=True)):
        text = data.get("geometry")
        if text:
            if not isinstance(text, str):
                raise SchemaError(f"edge {i} geometry", "expected WKT LINESTRING text")
            geom = np.array(check_line(_parse_wkt(text), f"edge {i} geometry", lonlat), float)
        else:
            geom = np.array([[graph.nodes[u]["x"], graph.nodes[u]["y"]], [graph.nodes[v]["x"], graph.nodes[v]["y"]]])
        if len(geom) < 2:
            raise SchemaError(f"edge {i} geometry", "an empty LINESTRING")
        graph.add_edge(u, v, geometry=geom, length=geometry.length(geom))
    return graph, crs


def _parse_wkt(text: str) -> list[list[float]]:
    numbers = re.findall(r"[-+0-9.eE]+\s+[-+0-9.eE]+", text[: 1 << 24])
    try:
        return [[float(v) for v in pair.split()] for pair in numbers]
    except ValueError:
        raise SchemaError("geometry", f"unreadable WKT {text[:40]!r}") from None


def utm_crs(lon: float, lat: float) -> str:
    """The UTM zone's EPSG code at a lon/lat."""
    zone = int(math.floor((lon + 180) / 6) % 60) + 1
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def metric_crs(graph: Any, crs: Any) -> Any:
    """The CRS APLS measures ``graph`` in: its own when projected in metres, else the UTM zone
    of its centre.
    """
    from rasterio.crs import CRS

    require("rasterio", "APLS on georeferenced graphs")
    source = CRS.from_user_input(crs)
    if source.is_projected and abs(source.linear_units_factor[1] - 1.0) < 1e-9:
        return source
    xs = [d["x"] for _, d in graph.nodes(data=True)]
    ys = [d["y"] for _, d in graph.nodes(data=True)]
    if not xs:
        return source
    from rasterio.warp import transform

    lon, lat = transform(source, "EPSG:4326", [float(np.mean(xs))], [float(np.mean(ys))])
    return CRS.from_user_input(utm_crs(lon[0], lat[0]))


def to_metric(graph: Any, crs: Any, target: Any) -> Any:
    """A copy of ``graph`` with coordinates in ``target`` (metres) and planar lengths."""
    nx = require("networkx", "road graphs")
    from rasterio.crs import CRS
    from rasterio.warp import transform

    source = CRS.from_user_input(crs)
    same = source == CRS.from_user_input(target)

    def move(xy: np.ndarray) -> np.ndarray:
        if same or not len(xy):
            return np.asarray(xy, float)
        xs, ys = transform(source, target, xy[:, 0].tolist(), xy[:, 1].tolist())
        return np.stack([xs, ys], axis=1)

    out = nx.MultiGraph()
    nodes = list(graph.nodes(data=True))
    moved = move(np.array([[d["x"], d["y"]] for _, d in nodes], float).reshape(-1, 2))
    for (n, _), (x, y) in zip(nodes, moved):
        out.add_node(n, x=float(x), y=float(y))
    for u, v, data in graph.edges(data=True):
        geom = move(np.asarray(data["geometry"], float))
        out.add_edge(u, v, geometry=geom, length=geometry.length(geom))
    return out
