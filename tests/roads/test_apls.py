"""APLS against CosmiQ's reference: the expected scores below are what ``apls/apls.py`` (github
CosmiQ/apls, commit 4a78807; make_graphs with is_curved_eps=-1, linestring_delta=50,
max_snap_dist=4, min_path_length=10) gives on the same graphs — reproduced by
``benchmarks/apls_check.py``, which runs both.
"""

import networkx as nx
import pytest

from sam2ms.roads.apls import AplsParams, apls
from sam2ms.roads.synthetic import apls_reference_cases, synthetic_scene_case
from sam2ms.roads.synthetic import street_grid as grid

REFERENCE = {  # case: (APLS, gt onto proposal, proposal onto gt) from the reference
    "identical": (1.0, 1.0, 1.0),
    "removed_edge": (0.944629, 0.910717, 0.981164),
    "shifted_1.5m": (0.995018, 0.995018, 0.995018),
    "shifted_6m": (0.308442, 0.308442, 0.308442),
    "gap_halves": (0.5, 0.333333, 1.0),
    "curved_vs_straight": (0.584316, 0.53359, 0.645701),
}


def test_extracted_scene_graph_matches_the_reference() -> None:
    got = apls(*synthetic_scene_case(1024, seed=1))
    assert (got["apls"], got["apls_gt_onto_prop"], got["apls_prop_onto_gt"]) == pytest.approx(
        (0.985245, 0.98548, 0.98501), abs=1e-6
    )


def _case(name: str) -> tuple[nx.MultiGraph, nx.MultiGraph]:
    return apls_reference_cases()[name]


@pytest.mark.parametrize("name", list(REFERENCE))
def test_matches_the_reference(name: str) -> None:
    got = apls(*_case(name))
    assert (got["apls"], got["apls_gt_onto_prop"], got["apls_prop_onto_gt"]) == pytest.approx(REFERENCE[name], abs=1e-6)


def test_symmetry_and_harmonic_mean() -> None:
    truth, proposal = _case("removed_edge")
    ab, ba = apls(truth, proposal), apls(proposal, truth)
    assert ab["apls_gt_onto_prop"] == pytest.approx(ba["apls_prop_onto_gt"])
    assert ab["apls_prop_onto_gt"] == pytest.approx(ba["apls_gt_onto_prop"])
    a, b = ab["apls_gt_onto_prop"], ab["apls_prop_onto_gt"]
    assert ab["apls"] == pytest.approx(2 * a * b / (a + b)) == pytest.approx(ba["apls"])


def test_node_labels_do_not_matter() -> None:
    truth, proposal = _case("curved_vs_straight")
    renamed = nx.relabel_nodes(proposal, {n: f"p{n}" for n in proposal.nodes})
    assert apls(truth, renamed)["apls"] == pytest.approx(REFERENCE["curved_vs_straight"][0], abs=1e-6)


def test_empty_graphs_convention() -> None:
    empty = nx.MultiGraph()
    assert apls(empty, empty)["apls"] == 1.0
    assert apls(grid(3, 100), empty)["apls"] == 0.0 and apls(empty, grid(3, 100))["apls"] == 0.0


def test_large_graphs_sample_control_points_with_a_seed() -> None:
    truth, proposal = grid(25, 60), grid(25, 60, shift=(1.0, 1.0), drop={(30, 31)})
    full = apls(truth, proposal)  # 625 nodes >= 500: no midpoints, all 625 nodes (< max_nodes) as control points
    assert full["control_points_gt"] == 625 and full["apls"] == pytest.approx(0.999515, abs=1e-6)  # the reference
    sampled = apls(truth, proposal, AplsParams(max_nodes=200, seed=3))
    assert sampled["control_points_gt"] == 200 and sampled == apls(truth, proposal, AplsParams(max_nodes=200, seed=3))
