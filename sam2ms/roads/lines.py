"""Road graphs from polylines, as the APLS reference builds them from SpaceNet's GeoJSON labels:
a node at every line end and at every vertex that two or more lines share, each line split at
its nodes. Lines that merely cross between vertices are not connected (as in the reference).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

from sam2ms.deps import require

from . import geometry


def lines_to_graph(polylines: Iterable[Any]) -> Any:
    """A networkx MultiGraph (``x``/``y`` nodes, ``geometry`` and planar ``length`` edges) of
    polylines in one metric CRS.
    """
    nx = require("networkx", "road graphs")
    lines = [np.asarray(p, float)[:, :2] for p in polylines]
    lines = [line for line in lines if len(line) >= 2]
    shared = Counter(v for line in lines for v in {tuple(p) for p in line.tolist()})
    graph = nx.MultiGraph()
    ids: dict[tuple[float, float], int] = {}

    def node(p: tuple[float, float]) -> int:
        if p not in ids:
            ids[p] = len(ids)
            graph.add_node(ids[p], x=p[0], y=p[1])
        return ids[p]

    for line in lines:
        cuts = [0] + [i for i in range(1, len(line) - 1) if shared[tuple(line[i].tolist())] > 1] + [len(line) - 1]
        for a, b in itertools.pairwise(cuts):
            piece = line[a : b + 1]
            graph.add_edge(
                node(tuple(piece[0].tolist())),
                node(tuple(piece[-1].tolist())),
                geometry=piece,
                length=geometry.length(piece),
            )
    return graph


def clip_to_box(line: np.ndarray, width: float, height: float) -> list[np.ndarray]:
    """The parts of a polyline inside [0, width] x [0, height] (Liang-Barsky per segment)."""
    parts: list[list[np.ndarray]] = []
    current: list[np.ndarray] = []
    for p, q in itertools.pairwise(line):
        d = q - p
        t0, t1 = 0.0, 1.0
        for num, den in ((p[0], -d[0]), (width - p[0], d[0]), (p[1], -d[1]), (height - p[1], d[1])):
            if den == 0:
                if num < 0:
                    t0, t1 = 1.0, 0.0
                continue
            t = num / den
            if den < 0:
                t0 = max(t0, t)
            else:
                t1 = min(t1, t)
        if t0 > t1:
            if current:
                parts.append(current)
                current = []
            continue
        a, b = p + t0 * d, p + t1 * d
        if not current:
            current = [a]
        current.append(b)
        if t1 < 1.0:
            parts.append(current)
            current = []
    if current:
        parts.append(current)
    return [np.array(part) for part in parts if len(part) >= 2]


def split_at_crossings(lines: list[np.ndarray]) -> list[np.ndarray]:
    """The lines with a vertex added wherever two segments cross (or touch), so that
    :func:`lines_to_graph` joins them there: for drawn networks whose crossings are junctions.
    """
    segs = [(k, i, line[i], line[i + 1]) for k, line in enumerate(lines) for i in range(len(line) - 1)]
    if not segs:
        return lines
    owner = np.array([s[0] for s in segs])
    index = np.array([s[1] for s in segs])
    p, q = np.array([s[2] for s in segs]), np.array([s[3] for s in segs])
    r = q - p
    extra: dict[tuple[int, int], list[tuple[float, np.ndarray]]] = {}
    for start in range(0, len(segs), 512):  # rows in chunks: memory stays bounded
        a, ra = p[start : start + 512, None], r[start : start + 512, None]
        denom = ra[..., 0] * r[None, :, 1] - ra[..., 1] * r[None, :, 0]
        diff = p[None] - a
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (diff[..., 0] * r[None, :, 1] - diff[..., 1] * r[None, :, 0]) / denom
            u = (diff[..., 0] * ra[..., 1] - diff[..., 1] * ra[..., 0]) / denom
        rows = np.arange(start, min(start + 512, len(segs)))[:, None]
        same_line_neighbour = (owner[rows] == owner[None]) & (np.abs(index[rows] - index[None]) <= 1)
        hit = (denom != 0) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1) & ~same_line_neighbour
        for i, j in zip(*np.nonzero(hit)):
            i += start
            point = p[i] + t[i - start, j] * r[i]
            extra.setdefault((owner[i], index[i]), []).append((float(t[i - start, j]), point))
            extra.setdefault((owner[j], index[j]), []).append((float(u[i - start, j]), point))
    out = []
    for k, line in enumerate(lines):
        vertices = [line[0]]
        for i in range(len(line) - 1):
            for _, point in sorted(extra.get((k, i), []), key=lambda e: e[0]):
                vertices.append(point)
            vertices.append(line[i + 1])
        merged = np.array(vertices)
        keep = np.ones(len(merged), bool)
        keep[1:] = np.any(np.diff(merged, axis=0) != 0, axis=1)
        out.append(merged[keep])
    return out
