"""Raw SpaceNet 3 roads: 16-bit EPSG:4326 GeoTIFFs + GeoJSON centre-lines in both release namings."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sam2ms.errors import UsageError

from conftest import has_module
from fakes import COL, LAT, LON, RELEASES, RES, ROW, SIZE, make_spacenet

pytestmark = pytest.mark.skipif(not has_module("rasterio"), reason="rasterio not installed (pip install 'sam2ms[geo]')")


def _geodesic_pixel() -> tuple[float, float]:
    """(north-south, east-west) pixel size in metres, from pyproj's geodesic (an independent reference)."""
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    lat = LAT - SIZE / 2 * RES
    return geod.inv(LON, lat, LON, lat + RES)[2], geod.inv(LON, lat, LON + RES, lat)[2]


@pytest.mark.parametrize("release", list(RELEASES))
def test_raw_spacenet_loads_into_masks_of_the_road_width(tmp_path: Path, release: str) -> None:
    if not has_module("pyproj"):
        pytest.skip("pyproj not installed (pip install 'sam2ms[dev]')")
    from sam2ms.data.dataset import load_sample
    from sam2ms.data.layouts import discover

    make_spacenet(tmp_path, release, 1)
    make_spacenet(tmp_path, release, 2)
    sources = discover(tmp_path, "spacenet", road_width=4.0)
    assert len(sources) == 2 and [s.window for s in sources[0]] == [
        (0, 0, 1024),
        (276, 0, 1024),
        (0, 276, 1024),
        (276, 276, 1024),
    ]  # 1300² -> 1024² patches
    assert sources[0][0].mask.suffix == ".geojson"
    image, mask = load_sample(sources[0][0])
    assert image.shape == (1024, 1024, 3) and image.dtype == np.uint8 and image.std() > 30  # 16-bit stretched
    dy, dx = _geodesic_pixel()
    across_ew_road = mask[:, 100]  # a column through the east-west road
    across_ns_road = mask[600, :]  # a row through the north-south road
    ny, nx = math.floor(2 / dy), math.floor(2 / dx)  # whole pixels within 2 m of the centre-line
    assert np.flatnonzero(across_ew_road).tolist() == list(range(ROW - ny, ROW + ny + 1))
    assert np.flatnonzero(across_ns_road).tolist() == list(range(COL - nx, COL + nx + 1))
    assert nx > ny  # metres, not degrees: a degree of longitude is shorter here
    _, wider = load_sample(discover(tmp_path, "spacenet", road_width=8.0)[0][0])
    assert wider[:, 100].sum() == 2 * math.floor(4 / dy) + 1


def test_raw_spacenet_missing_label_is_named(tmp_path: Path) -> None:
    from sam2ms.data.layouts import discover

    make_spacenet(tmp_path, "sn3", 1)
    next((tmp_path / "AOI_2_Vegas" / "geojson_roads").glob("*.geojson")).unlink()
    with pytest.raises(UsageError, match=r"PS-RGB_img1\.tif: no GeoJSON centre-lines"):
        discover(tmp_path, "spacenet")
    with pytest.raises(UsageError, match="SpaceNet 3 as released"):
        discover(tmp_path / "AOI_2_Vegas" / "geojson_roads", "spacenet")


def test_stats_over_the_raw_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import run_cli

    make_spacenet(tmp_path / "sn", "original", 1)
    make_spacenet(tmp_path / "sn", "original", 2)
    code, out, err = run_cli(
        ["stats", str(tmp_path / "sn"), "--layout", "spacenet", "-o", str(tmp_path / "s.json"), "--json", "--quiet"],
        capsys,
    )
    assert code == 0, err
    stats = json.loads(out)
    assert stats["files"] == 2 and stats["bands"] == [1, 2, 3] and stats["dtypes"] == ["uint16"]
    # uniform 100..1999: the 2nd/98th percentiles sit near 138 and 1961
    assert all(abs(v - 138) < 15 for v in stats["low"]) and all(abs(v - 1961) < 15 for v in stats["high"])


def test_label_in_another_crs_is_reprojected(tmp_path: Path) -> None:
    """A label GeoJSON whose legacy ``crs`` member names a projected CRS is reprojected to the image."""
    from rasterio.crs import CRS
    from rasterio.transform import from_origin
    from rasterio.warp import transform

    from sam2ms.labels import rasterize_roads

    make_spacenet(tmp_path, "sn3", 1)
    label = next((tmp_path / "AOI_2_Vegas" / "geojson_roads").glob("*.geojson"))
    lonlat = rasterize_roads(label, SIZE, SIZE, from_origin(LON, LAT, RES, RES), CRS.from_epsg(4326), 4.0)
    data = json.loads(label.read_text())
    for feature in data["features"]:
        geom = feature["geometry"]
        if geom:
            parts = [geom["coordinates"]] if geom["type"] == "LineString" else geom["coordinates"]
            for part in parts:
                xs, ys = transform("EPSG:4326", "EPSG:32611", [p[0] for p in part], [p[1] for p in part])
                part[:] = [[x, y] for x, y in zip(xs, ys)]
    data["crs"] = {"type": "name", "properties": {"name": "EPSG:32611"}}
    label.write_text(json.dumps(data))
    utm = rasterize_roads(label, SIZE, SIZE, from_origin(LON, LAT, RES, RES), CRS.from_epsg(4326), 4.0)
    assert lonlat.any() and (utm != lonlat).mean() < 1e-4


def test_eval_graphs_read_the_geojson_in_metres(tmp_path: Path) -> None:
    """``eval --apls`` on SpaceNet: the truth graph is the window's GeoJSON centre-lines (clipped,
    built as the APLS reference builds it), the prediction's graph is in the same metric frame.
    """
    if not (has_module("pyproj") and has_module("networkx") and has_module("skimage")):
        pytest.skip("pyproj, networkx and scikit-image needed (pip install 'sam2ms[dev]')")
    import networkx as nx

    from sam2ms.data.dataset import load_sample
    from sam2ms.data.layouts import discover
    from sam2ms.roads.samples import sample_graphs
    from sam2ms.roads.score import graph_scores

    make_spacenet(tmp_path, "sn3", 1)
    samples = discover(tmp_path, "spacenet", road_width=4.0)[0]
    dy, dx = _geodesic_pixel()
    for sample in (samples[0], samples[3]):  # windows at (0, 0) and (276, 276)
        assert sample.window is not None
        left, top, _ = sample.window
        _, mask = load_sample(sample)
        truth, proposal = sample_graphs(sample, mask, mask.astype(np.float32))
        # the two centre-lines cross between vertices: the reference's graph does not join them
        assert truth.number_of_nodes() == 4 and truth.number_of_edges() == 2
        edges = [d for *_, d in truth.edges(data=True)]
        # each runs from its first pixel centre (0.5) to the window's edge (1024): 1023.5 pixels
        assert sorted(d["length"] for d in edges) == pytest.approx(sorted([1023.5 * dx, 1023.5 * dy]), rel=1e-3)
        east_west = next(d["geometry"] for d in edges if np.ptp(d["geometry"][:, 1]) < 1e-6)
        assert east_west[0, 1] == pytest.approx((ROW + 0.5 - top) * dy, rel=1e-3)
        north_south = next(d["geometry"] for d in edges if np.ptp(d["geometry"][:, 0]) < 1e-6)
        assert north_south[0, 0] == pytest.approx((COL + 0.5 - left) * dx, rel=1e-3)
        # the mask's graph: the same roads in the same metres, joined where they cross
        total = sum(d["length"] for *_, d in proposal.edges(data=True))
        assert total == pytest.approx(sum(d["length"] for d in edges), rel=0.03)
        assert nx.is_connected(proposal) and not nx.is_connected(truth)
        scores = graph_scores(truth, proposal)
        assert 0 < scores["apls"] < 1 and scores["topo_tp"] > 0  # truth's crossing is no junction
