"""TOPO against CosmiQ's reference: the expected counts below are what ``apls/topo_metric.py``
(github CosmiQ/apls, commit 4a78807; compute_topo with apls.py's settings: 150 m subgraphs,
30 m interval, 4 m holes) gives on the same graphs from the same origins (our seeded draw) —
reproduced by ``benchmarks/apls_check.py``, which runs both.
"""

import networkx as nx
import pytest

from sam2ms.roads.lines import lines_to_graph
from sam2ms.roads.synthetic import apls_reference_cases, synthetic_scene_case
from sam2ms.roads.topo import TopoParams, draw_origins, topo

REFERENCE = {  # case: (tp, fp, fn) from the reference, origins drawn by draw_origins(truth, TopoParams())
    "identical": (216, 0, 0),
    "removed_edge": (208, 0, 8),
    "shifted_1.5m": (216, 0, 0),
    "shifted_6m": (0, 0, 216),
    "gap_halves": (2, 0, 0),
    "curved_vs_straight": (16, 0, 0),
}


@pytest.mark.parametrize("name", list(REFERENCE))
def test_matches_the_reference(name: str) -> None:
    got = topo(*apls_reference_cases()[name])
    assert (got["topo_tp"], got["topo_fp"], got["topo_fn"]) == REFERENCE[name]


def test_extracted_scene_graph_matches_the_reference() -> None:
    """A case with misses and extras on both sides: a scene's label graph against its drawn roads."""
    got = topo(*synthetic_scene_case(1024, seed=1))
    assert (got["topo_tp"], got["topo_fp"], got["topo_fn"]) == (708, 225, 408)
    assert got["topo_precision"] == pytest.approx(0.758842, abs=1e-6)
    assert got["topo_recall"] == pytest.approx(0.634409, abs=1e-6)
    assert got["topo_f1"] == pytest.approx(0.691069, abs=1e-6)


def test_holes_and_marbles_on_one_road() -> None:
    """A 100 m road from origin (0, 0): holes at both ends and at 30, 60, 90 m. A proposal 5 m
    short keeps every hole but the far end; one 3 m off sideways still fills all (4 m holes).
    """
    truth = lines_to_graph([[[0, 0], [100, 0]]])
    start = [n for n, d in truth.nodes(data=True) if d["x"] == 0]
    short = topo(truth, lines_to_graph([[[0, 0], [95, 0]]]), origins=start)
    assert (short["topo_tp"], short["topo_fp"], short["topo_fn"]) == (4, 1, 1)  # the 95 m end is 5 m from a hole
    beside = topo(truth, lines_to_graph([[[0, 3], [100, 3]]]), origins=start)
    assert (beside["topo_tp"], beside["topo_fp"], beside["topo_fn"]) == (5, 0, 0)
    assert short["topo_precision"] == short["topo_recall"] == pytest.approx(0.8)


def test_a_proposal_without_a_node_near_the_origin_misses_every_hole() -> None:
    truth = lines_to_graph([[[0, 0], [100, 0]]])
    far = topo(
        truth, lines_to_graph([[[10, 0], [100, 0]]]), origins=[n for n, d in truth.nodes(data=True) if d["x"] == 0]
    )
    assert (far["topo_tp"], far["topo_fp"], far["topo_fn"]) == (0, 0, 5)


def test_origins_are_seeded_and_drawn_with_replacement() -> None:
    truth, proposal = apls_reference_cases()["removed_edge"]
    origins = draw_origins(truth, TopoParams(origins=100, seed=3))
    assert len(origins) == truth.number_of_nodes() == 16  # min(origins, nodes), as the reference
    assert len(set(origins)) < 16  # with replacement: some node twice
    assert origins == draw_origins(truth, TopoParams(origins=100, seed=3))
    assert origins != draw_origins(truth, TopoParams(origins=100, seed=4))
    assert topo(truth, proposal, TopoParams(origins=8, seed=3))["topo_origins"] == 8


def test_empty_graphs_convention() -> None:
    empty, road = nx.MultiGraph(), lines_to_graph([[[0, 0], [100, 0]]])
    assert topo(empty, empty)["topo_f1"] == 1.0
    assert topo(road, empty)["topo_f1"] == 0.0 and topo(empty, road)["topo_f1"] == 0.0
