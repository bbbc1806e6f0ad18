"""Road graphs from masks: skeleton -> networkx MultiGraph, cleaned as road-graph tools clean it.

1. The mask is thinned to a one-pixel skeleton (scikit-image) and traced into pixel chains
   between ends and junctions (:func:`sam2ms.roads.skeleton.trace_skeleton`).
2. Junctions: skeleton pixels of degree >= 3 that touch each other form one junction (a road
   crossing thins into a small cluster of them); the node sits at the cluster's centroid.
3. Cleaning, in this order, every distance in metres (``pixel_size`` metres per pixel):
   * spurs: dead-end edges shorter than ``spur_m`` (12 m) hanging off a junction are removed,
     repeatedly, until none is left (skeleton whiskers from road edges and corners);
   * near-duplicate junctions: edges shorter than ``merge_m`` (4 m, APLS's snapping distance)
     between two nodes are contracted to their midpoint;
   * gaps: two dead ends closer than ``gap_m`` (20 m) whose roads point at each other (the
     gap's direction within ``gap_angle`` (35°) of both ends' directions) are joined by a straight
     edge — a tree or a shadow across a road;
   * small pieces: connected components shorter in total than ``min_component_m`` (15 m);
   * pass-through nodes (two edges, left by the steps above) join their edges into one;
   * simplification: Douglas-Peucker with ``simplify_px`` (1 px) on every edge.
Nodes carry ``x``/``y`` (pixel centres mapped through ``transform`` when given) and ``row``/
``col``; edges ``geometry`` (x, y vertices from their first node to their second) and ``length``
in metres (pixel distances scaled per axis, so EPSG:4326 pixels count right).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.deps import require
from sam2ms.errors import UsageError

from . import geometry


@dataclass(frozen=True)
class CleanParams:
    """How a skeleton is cleaned into a road graph, in metres: spurs cut, nodes merged, gaps closed."""

    spur_m: float = 12.0
    merge_m: float = 4.0
    gap_m: float = 20.0
    gap_angle: float = 35.0
    min_component_m: float = 15.0
    simplify_px: float = 1.0


def _junction_clusters(skeleton: np.ndarray, degree: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels of 8-connected clusters of junction pixels (degree >= 3), and their count."""
    from scipy.ndimage import label

    labels, n = label(skeleton & (degree >= 3), structure=np.ones((3, 3), bool))
    return labels, n


BLOCK = 2048  # pixels: the side of the blocks a scene is thinned and traced in
HALO = 64  # pixels read around each block, so that its skeleton is the whole scene's there


def _add_skeleton(
    graph: Any,
    window: np.ndarray,
    offset: tuple[int, int],
    core: tuple[int, int, int, int],
    spacing: tuple[float, float],
) -> None:
    """Add to ``graph`` the skeleton chains of ``window`` (a mask read at ``offset`` = (row, col) of
    the scene) that lie in ``core`` = (row0, row1, col0, col1), in scene pixels. A chain leaving the
    core ends at a *border node* halfway between its last pixel inside and its first outside, keyed
    by that pixel pair, so that the neighbouring block's piece of the same chain meets it there.
    """
    ski = require("skimage.morphology", "road graphs")
    from scipy.ndimage import convolve

    from .skeleton import trace_skeleton

    r_off, c_off = offset
    skeleton = ski.skeletonize(window.astype(bool))
    degree = convolve(skeleton.astype(np.int32), np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]]), mode="constant")
    degree = np.where(skeleton, degree, 0)
    clusters, n_clusters = _junction_clusters(skeleton, degree)
    rows, cols = np.nonzero(clusters)
    ks = clusters[rows, cols]
    count = np.bincount(ks, minlength=n_clusters + 1)
    mean_r = np.bincount(ks, rows, minlength=n_clusters + 1) / np.maximum(count, 1) + r_off
    mean_c = np.bincount(ks, cols, minlength=n_clusters + 1) / np.maximum(count, 1) + c_off
    inside = (rows + r_off >= core[0]) & (rows + r_off < core[1]) & (cols + c_off >= core[2]) & (cols + c_off < core[3])
    owned = np.bincount(ks, inside, minlength=n_clusters + 1) > 0
    first = np.zeros(n_clusters + 1, int)
    labels, index = np.unique(ks, return_index=True)
    first[labels] = index
    # a junction's key: its first pixel in the scene, the same in every block
    keys = {k: ("j", (int(rows[first[k]]) + r_off, int(cols[first[k]]) + c_off)) for k in range(1, n_clusters + 1)}
    for k, key in keys.items():
        if owned[k] and key not in graph:
            graph.add_node(key, row=float(mean_r[k]), col=float(mean_c[k]))
    node_of = {(r, c): (keys[k], k) for r, c, k in zip(rows.tolist(), cols.tolist(), ks.tolist())}

    def end(p: tuple[int, int]) -> tuple[Any, float, float]:
        """A chain end's node key and position (a junction's centroid, else the pixel)."""
        if p in node_of:
            key, k = node_of[p]
            return key, float(mean_r[k]), float(mean_c[k])
        return ("e", (p[0] + r_off, p[1] + c_off)), float(p[0] + r_off), float(p[1] + c_off)

    for chain in trace_skeleton(skeleton):
        if len(chain) < 2:
            continue
        here = chain + (r_off, c_off)  # noqa: RUF005 - numpy: the offset added to every point
        mine = (here[:, 0] >= core[0]) & (here[:, 0] < core[1]) & (here[:, 1] >= core[2]) & (here[:, 1] < core[3])
        ends = [end(tuple(chain[0])), end(tuple(chain[-1]))]
        if not mine.any() or (ends[0][0] == ends[1][0] and len(chain) <= 3):
            continue  # another block's, or a step inside a junction cluster
        pixels = here.astype(float)
        pixels[0], pixels[-1] = ends[0][1:], ends[1][1:]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], mine.view(np.int8), [0]])))
        for i, j in zip(edges[::2], edges[1::2] - 1):  # runs of pixels inside the core
            piece = pixels[i : j + 1]
            if i == 0:  # the chain's own end (inside this core: its junction is whole in the window)
                a = ends[0][0]
                if a not in graph:
                    graph.add_node(a, row=ends[0][1], col=ends[0][2])
            else:
                a, mid = _border(graph, here[i - 1], here[i])
                piece = np.concatenate([mid, piece])
            if j == len(chain) - 1:
                b = ends[1][0]
                if b not in graph:
                    graph.add_node(b, row=ends[1][1], col=ends[1][2])
            else:
                b, mid = _border(graph, here[j], here[j + 1])
                piece = np.concatenate([piece, mid])
            graph.add_edge(a, b, pixels=piece, length=_metres(piece, spacing))


def _border(graph: Any, p: np.ndarray, q: np.ndarray) -> tuple[Any, np.ndarray]:
    """The border node between scene pixels ``p`` and ``q`` of one chain (added when new) and
    its position as a one-row array.
    """
    key = ("b", tuple(sorted((tuple(p.tolist()), tuple(q.tolist())))))
    mid = (p + q) / 2.0
    if key not in graph:
        graph.add_node(key, row=float(mid[0]), col=float(mid[1]))
    return key, mid[None]


def skeleton_graph(
    read: Any, height: int, width: int, spacing: tuple[float, float] = (1.0, 1.0), block: int = BLOCK, halo: int = HALO
) -> Any:
    """The raw graph of a mask's skeleton in scene pixels (``row``/``col`` nodes, ``pixels`` edges
    as (row, col) chains, lengths in metres from ``spacing`` = (row, col) metres per pixel).
    ``read(row, col, h, w)`` returns a boolean window of the mask: the scene is thinned and traced
    ``block`` pixels at a time, each block read with ``halo`` pixels around it, and the blocks'
    pieces meet at border nodes (:func:`_add_skeleton`), so memory follows the block, not the scene.
    The skeleton inside a block equals the whole scene's where no mask blob wider than about twice
    the halo crosses the block's edge.
    """
    nx = require("networkx", "road graphs")
    graph = nx.MultiGraph()
    for r0 in range(0, height, block):
        for c0 in range(0, width, block):
            core = (r0, min(r0 + block, height), c0, min(c0 + block, width))
            wr, wc = max(r0 - halo, 0), max(c0 - halo, 0)
            window = read(wr, wc, min(core[1] + halo, height) - wr, min(core[3] + halo, width) - wc)
            _add_skeleton(graph, window, (wr, wc), core, spacing)
    graph.remove_nodes_from([n for n in list(graph.nodes) if graph.degree(n) == 0])
    _dissolve_pass_through(graph, spacing, kinds=("b",))  # pieces of one chain in two blocks
    return graph


def _metres(pixels: np.ndarray, spacing: tuple[float, float]) -> float:
    d = np.diff(pixels, axis=0) * np.asarray(spacing)
    return float(np.hypot(d[:, 0], d[:, 1]).sum())


def _oriented(graph: Any, u: Any, data: dict[str, Any]) -> np.ndarray:
    """The edge's pixel chain running from node ``u``."""
    pixels = data["pixels"]
    start = np.array([graph.nodes[u]["row"], graph.nodes[u]["col"]])
    return np.asarray(pixels if np.hypot(*(pixels[0] - start)) <= np.hypot(*(pixels[-1] - start)) else pixels[::-1])


def _prune_spurs(graph: Any, limit: float) -> None:
    while True:
        degree = dict(graph.degree)  # of this pass's graph: the spurs are listed before any goes
        spurs = [
            (u, v, k)
            for u, v, k, d in graph.edges(keys=True, data=True)
            if d["length"] < limit and u != v and min(degree[u], degree[v]) == 1 and max(degree[u], degree[v]) >= 3
        ]
        if not spurs:
            return
        for u, v, k in spurs:
            if graph.has_edge(u, v, k):
                graph.remove_edge(u, v, k)
                graph.remove_nodes_from([n for n in (u, v) if graph.degree(n) == 0])


def _merge_close_nodes(graph: Any, limit: float, spacing: tuple[float, float]) -> None:
    """Contract edges shorter than ``limit``, always the first short edge in the graph's edge order.

    Contraction never leaves a connected component, so each component is done on its own, scanning
    only its edges (in the graph's order: the same merges as a scan of the whole graph each time):
    the cost follows each component's size, not their number times the graph's (a texture-like
    mask of ~60 000 specks took minutes the other way).
    """
    nx = require("networkx", "road graphs")
    order = {n: i for i, n in enumerate(graph.nodes)}
    for component in list(nx.connected_components(graph)):
        if len(component) > 1:
            _merge_in_component(graph, sorted(component, key=order.__getitem__), limit, spacing, nx)


def _merge_in_component(graph: Any, nodes: list[Any], limit: float, spacing: tuple[float, float], nx: Any) -> None:
    while True:
        short = next(((u, v) for u, v, d in graph.edges(nodes, data=True) if u != v and d["length"] < limit), None)
        if short is None:
            return
        nodes.remove(short[1])
        contract(graph, *short, spacing, nx)


def contract(graph: Any, u: Any, v: Any, spacing: tuple[float, float], nx: Any) -> None:
    """Merge node ``v`` into ``u`` at their midpoint, dropping the edges between them and
    re-anchoring ``u``'s edges there.
    """
    row = (graph.nodes[u]["row"] + graph.nodes[v]["row"]) / 2
    col = (graph.nodes[u]["col"] + graph.nodes[v]["col"]) / 2
    graph.remove_edges_from([(u, v, k) for k in list(graph[u][v])])
    nx.contracted_nodes(graph, u, v, self_loops=False, copy=False)
    graph.nodes[u].update(row=row, col=col)
    graph.nodes[u].pop("contraction", None)
    for _, _, data in graph.edges(u, data=True):  # re-anchor the merged node's edges
        pixels = _oriented(graph, u, data).copy()
        pixels[0] = [row, col]
        data["pixels"] = pixels
        data["length"] = _metres(pixels, spacing)


def _direction(graph: Any, end: Any) -> np.ndarray | None:
    """Unit vector along the road arriving at dead end ``end``, pointing out of it."""
    ((_, _other, data),) = graph.edges(end, data=True)
    pixels = _oriented(graph, end, data)
    back = pixels[min(len(pixels) - 1, 8)]
    v = pixels[0] - back
    norm = np.hypot(*v)
    return v / norm if norm > 0 else None


def _close_gaps(graph: Any, limit: float, angle: float, spacing: tuple[float, float]) -> None:
    from scipy.spatial import cKDTree

    ends = [n for n in graph.nodes if graph.degree(n) == 1]
    if len(ends) < 2:
        return
    cos_max = math.cos(math.radians(angle))
    joined: set[Any] = set()
    candidates = []
    pixels = np.array([[graph.nodes[n]["row"], graph.nodes[n]["col"]] for n in ends])
    pairs = np.array(sorted(cKDTree(pixels * np.asarray(spacing)).query_pairs(limit)), dtype=np.int64).reshape(-1, 2)
    directions = [_direction(graph, n) for n in ends]  # once per end, not once per pair
    # Only pairs that point at each other to within a hair of the angle are judged exactly (below,
    # as one pair at a time always was): the many that clearly do not are dropped in one pass.
    unit = np.array([d if d is not None else (np.nan, np.nan) for d in directions])
    step = (pixels[pairs[:, 1]] - pixels[pairs[:, 0]]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        step /= np.hypot(step[:, 0], step[:, 1])[:, None]
        near = ((unit[pairs[:, 0]] * step).sum(axis=1) >= cos_max - 1e-9) & (
            (unit[pairs[:, 1]] * -step).sum(axis=1) >= cos_max - 1e-9
        )
    for i, j in pairs[near].tolist():
        a, b, pa, pb = ends[i], ends[j], pixels[i], pixels[j]
        gap = _metres(np.array([pa, pb]), spacing)
        da, db = directions[i], directions[j]
        if gap == 0 or da is None or db is None:
            continue
        along = (pb - pa) / np.hypot(*(pb - pa))
        if da @ along >= cos_max and db @ -along >= cos_max:
            candidates.append((gap, a, b, pa, pb))
    for gap, a, b, pa, pb in sorted(candidates, key=lambda c: c[0]):
        if a in joined or b in joined:
            continue
        graph.add_edge(a, b, pixels=np.array([pa, pb]), length=gap, gap_closed=True)
        joined.update((a, b))


def _dissolve_pass_through(graph: Any, spacing: tuple[float, float], kinds: tuple[str, ...] = ("j", "e", "b")) -> None:
    """Nodes (of these ``kinds``) left with two edges join their edges into one: after pruning or
    merging, and the block borders a road crosses.
    """
    for n in [n for n in graph.nodes if graph.degree(n) == 2 and n[0] in kinds]:
        edges = list(graph.edges(n, keys=True, data=True))
        if len(edges) != 2 or any(v == n for _, v, _, _ in edges):
            continue  # a self-loop
        (_, a, ka, da), (_, b, kb, db) = edges
        if a == b and len(graph[n][a]) == 2:
            continue  # a loop through n and one other node: keep both ends
        pixels = np.concatenate([_oriented(graph, n, da)[::-1], _oriented(graph, n, db)[1:]])
        graph.remove_edge(n, a, ka)
        graph.remove_edge(n, b, kb)
        graph.remove_node(n)
        graph.add_edge(
            a,
            b,
            pixels=pixels,
            length=_metres(pixels, spacing),
            **({"gap_closed": True} if da.get("gap_closed") or db.get("gap_closed") else {}),
        )


def mask_to_graph(
    mask: np.ndarray,
    transform: Any = None,
    spacing: tuple[float, float] = (1.0, 1.0),
    params: CleanParams | None = None,
) -> Any:
    """The cleaned road graph of a boolean mask (see the module docstring). ``transform`` (an
    affine of the scene) maps pixel centres to the scene's CRS for ``x``/``y`` and ``geometry``;
    ``spacing`` = (row, column) metres per pixel for lengths and the cleaning distances.
    """
    return raster_to_graph(
        lambda r, c, h, w: mask[r : r + h, c : c + w],
        mask.shape[0],
        mask.shape[1],
        transform,
        spacing,
        params,
        block=max(mask.shape[0], mask.shape[1], 1),
        halo=0,
    )


def raster_to_graph(
    read: Any,
    height: int,
    width: int,
    transform: Any = None,
    spacing: tuple[float, float] = (1.0, 1.0),
    params: CleanParams | None = None,
    block: int = BLOCK,
    halo: int = HALO,
) -> Any:
    """:func:`mask_to_graph` of a mask read by windows (``read(row, col, h, w)`` -> boolean
    array), ``block`` pixels at a time: the raw skeleton graph is joined over the blocks
    (:func:`skeleton_graph`) and cleaned as one, so cleaning sees roads across block borders.
    """
    nx = require("networkx", "road graphs")
    measure = require("skimage.measure", "road graphs")
    params = params or CleanParams()
    graph = skeleton_graph(read, height, width, spacing, block, halo)
    _prune_spurs(graph, params.spur_m)
    _merge_close_nodes(graph, params.merge_m, spacing)
    _close_gaps(graph, params.gap_m, params.gap_angle, spacing)
    _dissolve_pass_through(graph, spacing)
    _remove_small_components(graph, params.min_component_m, nx)
    out = nx.MultiGraph()
    order = sorted(graph.nodes, key=lambda n: (graph.nodes[n]["row"], graph.nodes[n]["col"]))
    ids = {n: i for i, n in enumerate(order)}
    for n, i in ids.items():
        row, col = graph.nodes[n]["row"], graph.nodes[n]["col"]
        x, y = _to_xy(np.array([[row, col]]), transform)[0]
        out.add_node(i, x=float(x), y=float(y), row=row, col=col)
    for u, v, data in graph.edges(data=True):
        pixels = _oriented(graph, u, data)
        if params.simplify_px > 0 and len(pixels) > 2:
            pixels = measure.approximate_polygon(pixels, params.simplify_px)
        attrs = {"geometry": _to_xy(pixels, transform), "length": _metres(pixels, spacing)}
        if data.get("gap_closed"):
            attrs["gap_closed"] = True
        out.add_edge(ids[u], ids[v], **attrs)
    return out


def _remove_small_components(graph: Any, min_length: float, nx: Any) -> None:
    """Remove the connected components whose edges are shorter than ``min_length`` in total (one
    pass over the edges, not a subgraph per component).
    """
    components = list(nx.connected_components(graph))
    index = {n: i for i, component in enumerate(components) for n in component}
    lengths = [0.0] * len(components)
    for u, _, data in graph.edges(data=True):
        lengths[index[u]] += data["length"]
    graph.remove_nodes_from([n for i, c in enumerate(components) if lengths[i] < min_length for n in c])


def _to_xy(pixels: np.ndarray, transform: Any) -> np.ndarray:
    """(row, col) pixel positions -> (x, y): pixel centres through ``transform``, else col/row."""
    rows, cols = pixels[:, 0] + 0.5, pixels[:, 1] + 0.5
    if transform is None:
        return np.stack([cols, rows], axis=1)
    return np.stack(geometry.apply_affine(transform, cols, rows), axis=1)


def scene_road_graph(
    read: Any,
    height: int,
    width: int,
    transform: Any = None,
    crs: Any = None,
    params: CleanParams | None = None,
    block: int = BLOCK,
) -> Any:
    """:func:`raster_to_graph` for a scene read by windows: metric spacing from its georeference
    (pixels when it has none), coordinates in its CRS.
    """
    from sam2ms.labels import pixel_metres

    spacing = pixel_metres(transform, crs, height) if crs is not None and transform is not None else (1.0, 1.0)
    return raster_to_graph(read, height, width, transform=transform, spacing=spacing, params=params, block=block)


def mask_raster_graph(path: Path, threshold: float = 0.5, block: int = BLOCK) -> tuple[Any, Any]:
    """(graph, CRS) of a mask or probability raster written earlier (road where value / 255 >=
    ``threshold``, inside its valid mask), read ``block`` pixels at a time through
    :func:`scene_road_graph`: memory follows the block, not the scene.
    """
    from sam2ms.geo.rasters import open_raster

    raster = open_raster(path)
    if raster.count != 1:
        raster.close()
        raise UsageError(
            f"{path}: {raster.count} bands; a road graph is built from a single-band mask or probability "
            "raster (sam2ms-infer's NAME.mask.tif / .prob.tif), not from an image"
        )

    def read(row: int, col: int, height: int, width: int) -> np.ndarray:
        values, valid = raster.read((1,), row, col, height, width)
        mask = values[0] >= threshold * 255
        return np.asarray(mask & valid if valid is not None else mask)

    try:
        profile = raster.profile or {}
        graph = scene_road_graph(
            read, raster.height, raster.width, profile.get("transform"), profile.get("crs"), block=block
        )
    finally:
        raster.close()
    return graph, profile.get("crs")


def draw_graph(image: np.ndarray, graph: Any) -> np.ndarray:
    """``image`` (uint8 H x W x 3) with the graph drawn over it in pixel coordinates: edges yellow
    (closed gaps orange), junctions red, dead ends blue.
    """
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(image.copy())
    draw = ImageDraw.Draw(canvas)
    for _, _, data in graph.edges(data=True):
        points = [(float(x) - 0.5, float(y) - 0.5) for x, y in np.asarray(data["geometry"])]
        draw.line(points, fill=(255, 140, 0) if data.get("gap_closed") else (255, 230, 0), width=2)
    for n, data in graph.nodes(data=True):
        x, y = data["col"], data["row"]
        colour = (40, 90, 255) if graph.degree(n) == 1 else (230, 30, 30)
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    return np.asarray(canvas)
