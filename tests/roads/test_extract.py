"""Road graphs from masks: against the synthetic scenes' known centre-lines, and each cleaning step."""

from typing import Any

import numpy as np
import pytest

from sam2ms.data.synth import LabelStyle, render_scene
from sam2ms.roads.apls import apls
from sam2ms.roads.extract import CleanParams, mask_to_graph
from sam2ms.roads.synthetic import scene_graph


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_graph_of_a_synthetic_label_matches_its_centre_lines(seed: int) -> None:
    scene = render_scene(512, 512, np.random.default_rng(seed), style="centerline", scale=1.0)
    truth = scene_graph(scene.roads, 512, 512)
    score = apls(truth, mask_to_graph(scene.label))
    assert score["apls"] > 0.95, score


def test_a_gap_across_a_road_costs_apls_not_pixels() -> None:
    scene = render_scene(512, 512, np.random.default_rng(1), style="centerline", scale=1.0)
    truth = scene_graph(scene.roads, 512, 512)
    cut = scene.label.copy()
    for line in (e[2]["geometry"] for e in truth.edges(data=True) if e[2]["length"] > 150):
        x, y = line[len(line) // 2]
        cut[int(y) - 12 : int(y) + 12, int(x) - 12 : int(x) + 12] = False  # a 24 px break in every long road
    lost = 1 - cut.sum() / scene.label.sum()
    intact, broken = apls(truth, mask_to_graph(scene.label))["apls"], apls(truth, mask_to_graph(cut))["apls"]
    assert lost < 0.08 and broken < intact - 0.3, (lost, intact, broken)


def test_a_long_road_is_one_edge() -> None:
    mask = np.zeros((200, 3000), bool)
    mask[95:104, 3:2997] = True  # crosses 12 windows of 256 px
    g = mask_to_graph(mask)
    ((_, _, data),) = g.edges(data=True)
    assert g.number_of_nodes() == 2 and data["length"] == pytest.approx(2985, abs=12)


@pytest.mark.parametrize(("block", "halo"), [(256, 32), (300, 64), (128, 48)])
@pytest.mark.parametrize("style", ["centerline", "boundary"])
def test_blocks_give_the_whole_mask_graph(style: LabelStyle, block: int, halo: int) -> None:
    """Thinned and traced block by block (a scene larger than memory), joined at the blocks'
    borders: the same nodes, edges and lengths as the whole mask at once.
    """
    from sam2ms.roads.extract import raster_to_graph

    mask = render_scene(
        1024, 1024, np.random.default_rng(5), style=style, scale=1.0 if style == "centerline" else 2.0
    ).label
    reads: list[tuple[int, int]] = []

    def read(r: int, c: int, h: int, w: int) -> np.ndarray:
        reads.append((h, w))
        return mask[r : r + h, c : c + w]

    whole, blocks = mask_to_graph(mask), raster_to_graph(read, mask.shape[0], mask.shape[1], block=block, halo=halo)
    assert max(h for h, _ in reads) <= block + 2 * halo and len(reads) == (-(-1024 // block)) ** 2
    assert (blocks.number_of_nodes(), blocks.number_of_edges()) == (whole.number_of_nodes(), whole.number_of_edges())
    length = [sum(d["length"] for *_, d in g.edges(data=True)) for g in (whole, blocks)]
    assert length[1] == pytest.approx(length[0], abs=1.0)  # a midpoint vertex at each border crossed
    assert apls(whole, blocks)["apls"] > 0.9999


def test_a_long_road_is_one_edge_across_blocks() -> None:
    from sam2ms.roads.extract import raster_to_graph

    mask = np.zeros((700, 3000), bool)
    rows = (350 + 250 * np.sin(np.arange(3000) / 300)).astype(int)
    for dr in range(-4, 5):
        mask[rows + dr, np.arange(3000)] = True  # a winding road through 12 x 3 blocks of 256 px
    g = raster_to_graph(lambda r, c, h, w: mask[r : r + h, c : c + w], *mask.shape, block=256, halo=32)
    ((_, _, data),) = g.edges(data=True)
    assert g.number_of_nodes() == 2 and data["length"] > 3000


def test_crossing_of_wide_roads_is_one_junction() -> None:
    mask = np.zeros((300, 300), bool)
    mask[140:160, 10:290] = True
    mask[10:290, 140:160] = True
    g = mask_to_graph(mask)
    assert sorted(d for _, d in g.degree()) == [1, 1, 1, 1, 4]


def test_spurs_are_pruned_and_branches_kept() -> None:
    mask = np.zeros((300, 400), bool)
    mask[145:155, 10:390] = True
    mask[130:145, 100:106] = True  # a 15 px whisker: under 12 m at 0.5 m per pixel
    mask[20:145, 300:308] = True  # a 125 px side road
    g = mask_to_graph(mask, spacing=(0.5, 0.5))
    assert sorted(d for _, d in g.degree()) == [1, 1, 1, 3]


def test_gaps_between_aligned_dead_ends_are_closed() -> None:
    mask = np.zeros((100, 600), bool)
    mask[45:52, 10:290] = True
    mask[45:52, 298:590] = True  # an 8 px break (a tree)
    g = mask_to_graph(mask)
    assert g.number_of_edges() == 1 and next(iter(g.edges(data=True)))[2].get("gap_closed")
    g = mask_to_graph(mask, params=CleanParams(gap_m=0.0))
    assert g.number_of_edges() == 2
    side = np.zeros((300, 300), bool)
    side[145:152, 10:140] = True
    side[160:290, 146:153] = True  # a dead end pointing across the other road's end, not at it
    assert mask_to_graph(side).number_of_edges() == 2


def test_georeferenced_coordinates_and_metric_lengths() -> None:
    from affine import Affine

    mask = np.zeros((100, 400), bool)
    mask[48:52, 0:400] = True
    transform = Affine(0.5, 0, 500_000, 0, -0.5, 4_000_000)
    g = mask_to_graph(mask, transform=transform, spacing=(0.5, 0.5))
    ((_, _, data),) = g.edges(data=True)
    xs = sorted(d["x"] for _, d in g.nodes(data=True))
    assert 500_000 < xs[0] < 500_010 and 500_190 < xs[1] < 500_200
    assert data["length"] == pytest.approx(np.hypot(*np.diff(data["geometry"], axis=0).T).sum(), rel=1e-6)
    assert mask_to_graph(np.zeros((50, 50), bool)).number_of_nodes() == 0


def test_a_ring_road_is_one_closed_edge() -> None:
    yy, xx = np.mgrid[:120, :120]
    ring = (np.hypot(yy - 60, xx - 60) > 40) & (np.hypot(yy - 60, xx - 60) < 46)
    g = mask_to_graph(ring)
    ((u, v, data),) = g.edges(data=True)
    assert u == v and data["length"] == pytest.approx(2 * np.pi * 43, rel=0.08)


def test_tile_scores_see_broken_roads_that_pixels_forgive() -> None:
    from sam2ms.metrics import agreement
    from sam2ms.roads.score import tile_scores

    scene = render_scene(256, 256, np.random.default_rng(2), style="centerline", scale=1.0)
    reference = scene.label[None].astype(np.float32)
    broken = reference.copy()
    ys, xs = np.nonzero(scene.label)
    for k in range(0, len(ys), max(1, len(ys) // 6)):  # six 10 px breaks along the roads
        broken[0, ys[k] - 5 : ys[k] + 5, xs[k] - 5 : xs[k] + 5] = 0
    same = tile_scores(reference, reference)
    assert same["apls"] == same["apls_min"] == same["topo_f1"] == 1.0 and same["topo_fp"] == same["topo_fn"] == 0
    pixels, graphs = agreement(reference, broken), tile_scores(reference, broken)
    assert pixels["f1"] > 0.9 and graphs["apls"] < 0.8, (pixels["f1"], graphs)
    assert graphs["topo_recall"] < 1.0 and graphs["topo_fn"] > 0


def _speckle(size: int, seed: int) -> np.ndarray:
    """A texture-like mask: thousands of small components (what an unmatched radiometry gives)."""
    from scipy.ndimage import gaussian_filter

    noise = gaussian_filter(np.random.default_rng(seed).normal(size=(size, size)), 1.2)
    return noise > 0.5 * noise.std()


def _reference_merge(graph: Any, limit: float, spacing: tuple[float, float]) -> None:
    """The merge as first written: always the first short edge of the whole graph, rescanned after
    each merge (quadratic in the number of components).
    """
    import networkx as nx

    from sam2ms.roads.extract import contract

    while True:
        short = next(((u, v) for u, v, d in graph.edges(data=True) if u != v and d["length"] < limit), None)
        if short is None:
            return
        contract(graph, *short, spacing, nx)


def _snapshot(graph: Any) -> list[Any]:
    return [(n, graph.nodes[n]["row"], graph.nodes[n]["col"]) for n in graph.nodes] + sorted(
        (str(u), str(v), round(d["length"], 9), d["pixels"].tobytes()) for u, v, d in graph.edges(data=True)
    )


def test_cleaning_a_speckled_mask_is_the_same_done_per_component() -> None:
    """Merging component by component (and judging only near-aligned gap pairs exactly) gives the
    graph the whole-graph rescans gave, on a mask of a few thousand specks and a road.
    """
    import copy

    from sam2ms.roads import extract

    mask = _speckle(384, 0)
    mask[190:196, :] = True  # a road through the speckle
    spacing = (0.5, 0.5)
    raw = extract.skeleton_graph(lambda r, c, h, w: mask[r : r + h, c : c + w], mask.shape[0], mask.shape[1], spacing)
    extract._prune_spurs(raw, 12.0)
    ours, reference = copy.deepcopy(raw), copy.deepcopy(raw)
    extract._merge_close_nodes(ours, 4.0, spacing)
    _reference_merge(reference, 4.0, spacing)
    assert raw.number_of_nodes() > 1000 and _snapshot(ours) == _snapshot(reference)
    graph = mask_to_graph(mask, spacing=spacing)
    assert any(d.get("gap_closed") for _, _, d in graph.edges(data=True))  # the gap pass had work to do
