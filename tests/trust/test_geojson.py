"""Road GeoJSON and GraphML from other tools: every feature checked before it reaches GDAL or the
scorer; what is not a road network is refused by the feature's index, never scored as 'no road'.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sam2ms.errors import UsageError
from sam2ms.vectors import parse_lines

from conftest import has_module, json_values, run_cli

pytestmark = pytest.mark.skipif(
    not has_module("networkx") or not has_module("rasterio"), reason="sam2ms apls needs [geo]"
)

ROAD = {"type": "LineString", "coordinates": [[115.0, -8.0], [115.001, -8.0], [115.002, -8.001]]}


def _collection(path: Path, *geometries: object, raw: str | None = None, **extra: object) -> Path:
    features = [{"type": "Feature", "properties": {}, "geometry": g} for g in geometries]
    path.write_text(
        raw if raw is not None else json.dumps({"type": "FeatureCollection", "features": features, **extra})
    )
    return path


@pytest.mark.parametrize(
    "geometry,message",
    [
        (
            {"type": "Polygon", "coordinates": [[[115, -8], [115.001, -8], [115.001, -8.001], [115, -8]]]},
            "feature 1.geometry.type: Polygon: roads must be LineString or MultiLineString",
        ),
        (None, "feature 1.geometry: no geometry (null)"),
        (
            {"type": "LineString", "coordinates": [[1e300, -8], [115, -8]]},
            "feature 1.geometry.coordinates[0]: coordinate (1e+300, -8) is not a finite number",
        ),
        (
            {"type": "LineString", "coordinates": [[115, 95], [115, 80]]},
            "feature 1.geometry.coordinates[0]: longitude/latitude (115, 95) outside",
        ),
        ({"type": "LineString", "coordinates": [[115, -8]]}, "feature 1.geometry.coordinates: expected a list of two"),
        ({"type": "LineString", "coordinates": [[115, "-8"], [115, -8]]}, "expected a position [x, y]"),
        (
            {"type": "MultiLineString", "coordinates": [[[115, -8], [True, -8]]]},
            "coordinates[0][1]: expected a position",
        ),
        ({"type": "GeometryCollection", "geometries": []}, "GeometryCollection: roads must be LineString"),
    ],
)
def test_apls_refuses_what_is_not_a_road_network(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], geometry: object, message: str
) -> None:
    truth = _collection(tmp_path / "truth.geojson", ROAD)
    proposal = _collection(tmp_path / "proposal.geojson", ROAD, geometry)
    code, _, err = run_cli(["apls", str(truth), str(proposal)], capsys)
    assert code == 2 and message in err and "proposal.geojson" in err and "Traceback" not in err, err


def test_nan_and_foreign_crs_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _collection(tmp_path / "truth.geojson", ROAD)
    nan = _collection(
        tmp_path / "nan.geojson",
        raw='{"type": "FeatureCollection", "features": [{"type": "Feature",'
        ' "geometry": {"type": "LineString", "coordinates": '
        "[[NaN, 1], [2, 3]]}}]}",
    )
    code, _, err = run_cli(["apls", str(truth), str(nan)], capsys)
    assert code == 2 and "NaN is not JSON" in err and "Traceback" not in err
    for name in ("/etc/passwd", "+init=epsg:4326", "+proj=longlat"):
        crs = {"type": "name", "properties": {"name": name}}
        path = _collection(tmp_path / "crs.geojson", ROAD, crs=crs)
        code, _, err = run_cli(["apls", str(truth), str(path)], capsys)
        assert code == 2 and "crs.properties.name: expected a CRS as an authority code" in err, err
    link = _collection(tmp_path / "link.geojson", ROAD, crs={"type": "link", "properties": {"href": "/etc/x"}})
    code, _, err = run_cli(["apls", str(truth), str(link)], capsys)
    assert code == 2 and "crs.properties.name: missing" in err
    utm = {"type": "LineString", "coordinates": [[500_000, 9_100_000], [500_100, 9_100_000]]}
    projected = _collection(tmp_path / "utm.geojson", utm, crs={"type": "name", "properties": {"name": "EPSG:32750"}})
    assert run_cli(["apls", str(projected), str(projected)], capsys)[0] == 0  # metres are not degrees


def test_graphml_positions_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import networkx as nx

    truth = _collection(tmp_path / "truth.geojson", ROAD)
    for x, geometry, message in (
        (float("nan"), None, "node '0': coordinate (nan, -8)"),
        (115.0, "LINESTRING (115 -8, 1e999 -8)", "edge 0 geometry[1]: coordinate"),
        (115.0, "LINESTRING (115 -8)", "edge 0 geometry: expected a list of two"),
    ):
        graph = nx.MultiGraph(crs="EPSG:4326")
        graph.add_node(0, x=x, y=-8.0)
        graph.add_node(1, x=115.001, y=-8.0)
        graph.add_edge(0, 1, length_m=100.0, **({"geometry": geometry} if geometry else {}))
        nx.write_graphml(graph, tmp_path / "g.graphml")
        code, _, err = run_cli(["apls", str(truth), str(tmp_path / "g.graphml")], capsys)
        assert code == 2 and message in err and "Traceback" not in err, err


def test_dataset_labels_must_be_georeferenced(tmp_path: Path) -> None:
    from sam2ms.vectors import read_lines

    pixels = _collection(tmp_path / "px.geojson", ROAD, pixel_coordinates=True)
    assert read_lines(pixels)[1] is None  # a network to score: fine, in pixels
    with pytest.raises(UsageError, match="pixel_coordinates: centre-lines in pixel coordinates"):
        read_lines(pixels, labels=True)
    with pytest.raises(UsageError, match="pixel_coordinates: expected true"):
        read_lines(_collection(tmp_path / "bad.geojson", ROAD, pixel_coordinates="yes"))


JSON = json_values(allow_nan=True, max_leaves=24)
POSITION = st.lists(st.floats() | st.integers() | st.booleans() | st.text(max_size=3), min_size=0, max_size=4)
GEOMETRY = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["LineString", "MultiLineString", "Point", "Polygon", "x"]) | JSON,
        "coordinates": st.lists(POSITION, max_size=4) | st.lists(st.lists(POSITION, max_size=3), max_size=3) | JSON,
    }
)
DOCUMENT = st.fixed_dictionaries(
    {
        "type": st.just("FeatureCollection") | JSON,
        "features": st.lists(
            st.fixed_dictionaries({"type": st.just("Feature"), "geometry": GEOMETRY | JSON}) | JSON, max_size=4
        )
        | JSON,
    },
    optional={
        "pixel_coordinates": st.booleans() | JSON,
        "crs": JSON
        | st.fixed_dictionaries(
            {
                "type": st.just("name"),
                "properties": st.fixed_dictionaries(
                    {"name": st.sampled_from(["EPSG:4326", "EPSG:32633", "/tmp/x", "EPSG:nope"]) | JSON}
                ),
            }
        ),
    },
)


@given(document=DOCUMENT | JSON)
def test_any_json_is_lines_or_a_usage_error(document: object) -> None:
    try:
        lines, crs = parse_lines(document, "fuzz.geojson")
    except UsageError:
        return
    assert crs is None or isinstance(crs, str)  # None: a graph in pixel coordinates
    for line in lines:
        parts = [line["coordinates"]] if line["type"] == "LineString" else line["coordinates"]
        assert all(
            len(part) >= 2 and all(len(p) == 2 and all(abs(v) <= 1e9 for v in p) for p in part) for part in parts
        )
