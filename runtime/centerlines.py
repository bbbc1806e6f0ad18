"""Road centre-lines from a binary mask: skeletonise, trace the skeleton graph, simplify, GeoJSON.

The mask is thinned to a one-pixel skeleton (scikit-image); its pixels of degree other than 2
(ends and junctions) are graph nodes, and every chain of degree-2 pixels between two nodes
becomes one polyline (closed loops too), simplified by Douglas-Peucker. Coordinates are pixel
centres, mapped through the scene's affine transform into its CRS when it has one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sam2ms.deps import require

_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _skimage() -> Any:
    """scikit-image with the two submodules used here imported."""
    for module in ("skimage.measure", "skimage.morphology"):
        require(module, "--format geojson")
    return require("skimage", "--format geojson")


def _neighbours(sk: np.ndarray, r: int, c: int) -> list[tuple[int, int]]:
    h, w = sk.shape
    return [(r + dr, c + dc) for dr, dc in _OFFSETS if 0 <= r + dr < h and 0 <= c + dc < w and sk[r + dr, c + dc]]


def trace_skeleton(skeleton: np.ndarray) -> list[np.ndarray]:
    """Polylines ((row, col) arrays) covering every skeleton pixel once, split at ends/junctions."""
    sk = skeleton.astype(bool)
    pixels = list(zip(*np.nonzero(sk)))
    degree = {p: len(_neighbours(sk, *p)) for p in pixels}
    is_node = {p: d != 2 for p, d in degree.items()}
    used: set[tuple[int, int]] = set()
    done_edges: set[frozenset] = set()
    lines: list[np.ndarray] = []

    def walk(start: tuple[int, int], first: tuple[int, int]) -> list[tuple[int, int]]:
        """Follow degree-2 pixels from ``first`` until a node (or back to ``start``: a loop)."""
        path, prev, cur = [start, first], start, first
        while not is_node[cur]:
            used.add(cur)
            options = [q for q in _neighbours(sk, *cur) if q != prev and q not in used]
            if not options:
                if start in _neighbours(sk, *cur) and len(path) > 2:
                    path.append(start)  # closes a loop
                break
            prev, cur = cur, options[0]
            path.append(cur)
        return path

    for node in (p for p in pixels if is_node[p]):
        for nb in _neighbours(sk, *node):
            if is_node[nb]:
                edge = frozenset((node, nb))
                if edge not in done_edges:
                    done_edges.add(edge)
                    lines.append(np.array([node, nb]))
            elif nb not in used:
                lines.append(np.array(walk(node, nb)))
        if degree[node] == 0:
            lines.append(np.array([node]))
    for p in pixels:  # closed loops have no node at all
        if not is_node[p] and p not in used:
            nb = _neighbours(sk, *p)[0]
            used.add(p)
            lines.append(np.array([p, *walk(p, nb)[1:]]))
    return lines


def centerlines(mask: np.ndarray, min_length: float = 8.0, tolerance: float = 1.0) -> list[np.ndarray]:
    """Simplified centre-line polylines ((row, col), pixel centres) of a road mask."""
    ski = _skimage()
    skeleton = ski.morphology.skeletonize(mask.astype(bool))
    out = []
    for line in trace_skeleton(skeleton):
        if len(line) < 2 or np.abs(np.diff(line, axis=0)).sum() < min_length:
            continue
        out.append(ski.measure.approximate_polygon(line.astype(np.float64), tolerance))
    return out


def to_geojson(lines: list[np.ndarray], transform: Any = None, crs: Any = None) -> dict[str, Any]:
    """A FeatureCollection of LineStrings in the scene's CRS (pixel x/y when it has none)."""
    features = []
    for i, line in enumerate(lines):
        rows, cols = line[:, 0] + 0.5, line[:, 1] + 0.5
        if transform is not None:
            xs, ys = transform * (cols, rows)
        else:
            xs, ys = cols, rows
        coords = [[float(x), float(y)] for x, y in zip(np.atleast_1d(xs), np.atleast_1d(ys))]
        features.append({"type": "Feature", "id": i, "properties": {"vertices": len(coords)},
                         "geometry": {"type": "LineString", "coordinates": coords}})
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs is not None:
        collection["crs"] = {"type": "name", "properties": {"name": str(crs)}}
    elif transform is None:
        collection["properties"] = {"coordinates": "pixels (x = column, y = row), no georeference"}
    return collection
