"""Road graphs as outputs (sam2ms-infer --format geojson|graphml, sam2ms graph) and sam2ms apls on files."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import has_module, run_cli

pytestmark = pytest.mark.skipif(not has_module("rasterio"), reason="rasterio not installed (pip install 'sam2ms[geo]')")

ROAD, LAND = (255, 0, 255), (0, 255, 0)  # the pixel-wise test model says road / not road


def _road_scene(path: Path) -> Path:
    """A 100 x 700 UTM scene (1 m pixels) with one straight road across 12 windows of 64 px."""
    import rasterio
    from rasterio.transform import from_origin

    img = np.empty((3, 100, 700), np.uint8)
    img[:] = np.array(LAND, np.uint8)[:, None, None]
    img[:, 45:55, 5:695] = np.array(ROAD, np.uint8)[:, None, None]
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=100,
        width=700,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(500_000, 4_000_000, 1.0, 1.0),
    ) as ds:
        ds.write(img)
    return path


def test_infer_writes_the_scene_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sam2ms.roads.io import read_graph

    from pixelwise import expected_probability, pixelwise_onnx

    assert (
        expected_probability(np.array([[ROAD]], np.uint8))[0, 0]
        > 0.5
        > expected_probability(np.array([[LAND]], np.uint8))[0, 0]
    )
    src = _road_scene(tmp_path / "in" / "scene.tif")
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    for fmt in ("geojson", "graphml"):
        code, out, err = run_cli(
            ["infer", model, str(src), "-o", str(tmp_path / "out"), "--format", fmt, "--quiet"], capsys
        )
        assert code == 0, err
    gj = json.loads((tmp_path / "out" / "scene.graph.geojson").read_text())
    lines = [f for f in gj["features"] if f["geometry"]["type"] == "LineString"]
    points = [f for f in gj["features"] if f["geometry"]["type"] == "Point"]
    assert len(lines) == 1 and len(points) == 2 and {p["properties"]["kind"] for p in points} == {"end"}
    assert lines[0]["properties"]["length_m"] == pytest.approx(685, abs=10)  # one edge across 12 windows
    assert gj["crs"]["properties"]["name"] == "EPSG:32633"
    x0, y0 = lines[0]["geometry"]["coordinates"][0]
    assert 500_000 < x0 < 500_700 and 3_999_900 < y0 < 4_000_000
    graph, crs = read_graph(tmp_path / "out" / "scene.graph.graphml")
    assert str(crs) == "EPSG:32633" and graph.number_of_edges() == 1
    ((_, _, data),) = graph.edges(data=True)
    assert data["length"] == pytest.approx(lines[0]["properties"]["length_m"], abs=0.01)
    # the same graph from the mask written earlier
    code, _, err = run_cli(
        ["infer", model, str(src), "-o", str(tmp_path / "cog"), "--format", "tif", "--quiet"], capsys
    )
    assert code == 0, err
    code, out, err = run_cli(
        ["graph", str(tmp_path / "cog" / "scene.mask.tif"), "-o", str(tmp_path / "g.geojson"), "--json"], capsys
    )
    assert code == 0 and json.loads(out)["edges"] == 1, err
    again = json.loads((tmp_path / "g.geojson").read_text())
    assert again["features"][0]["geometry"] == lines[0]["geometry"]


def _lonlat_grid(path: Path, shift_m: float = 0.0, drop_middle: bool = False) -> Path:
    """A 3 x 3 street grid, 120 m apart, written as RFC 7946 lon/lat LineStrings (near Las Vegas)."""
    lon0, lat0, m_lon, m_lat = -115.2, 36.1, 111_320 * np.cos(np.radians(36.1)), 110_950.0
    feats = []
    for i in range(3):
        for j in range(2):
            for a, b in (((j, i), (j + 1, i)), ((i, j), (i, j + 1))):
                if drop_middle and a == (1, 1) and b == (2, 1):
                    continue
                coords = [[lon0 + (p[0] * 120 + shift_m) / m_lon, lat0 + p[1] * 120 / m_lat, 0.0] for p in (a, b)]
                feats.append(
                    {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": coords}}
                )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def test_apls_command_on_lonlat_geojson(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _lonlat_grid(tmp_path / "truth.geojson")
    code, out, err = run_cli(
        ["apls", str(truth), str(_lonlat_grid(tmp_path / "same.geojson", shift_m=1.5)), "--json"], capsys
    )
    assert code == 0, err
    same = json.loads(out)
    assert (
        set(same) >= {"apls", "apls_gt_onto_prop", "apls_prop_onto_gt", "topo_precision", "topo_recall", "topo_f1"}
        and same["apls"] > 0.98
    )
    assert same["topo_f1"] == 1.0  # 1.5 m off: every marble within its 4 m hole
    code, out, err = run_cli(
        ["apls", str(truth), str(_lonlat_grid(tmp_path / "cut.geojson", drop_middle=True)), "--json"], capsys
    )
    cut = json.loads(out)
    assert code == 0 and cut["apls"] < same["apls"] - 0.05, err
    assert cut["topo_precision"] == 1.0 and cut["topo_recall"] < 1.0  # the cut street's holes stay empty
    (tmp_path / "bad.geojson").write_text("{}")
    code, _, err = run_cli(["apls", str(truth), str(tmp_path / "bad.geojson")], capsys)
    assert code == 2 and "bad.geojson" in err and "Traceback" not in err


def test_graph_command_reads_a_large_mask_by_blocks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``sam2ms graph --block``: a GeoTIFF mask thinned block by block gives the graph of the
    whole mask at once (same nodes, edges and length).
    """
    import rasterio
    from rasterio.transform import from_origin

    from sam2ms.data.synth import render_scene

    label = render_scene(1024, 1024, np.random.default_rng(5), style="boundary", scale=2.0).label
    mask = tmp_path / "scene.mask.tif"
    with rasterio.open(
        mask,
        "w",
        driver="GTiff",
        height=1024,
        width=1024,
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(500_000, 4_000_000, 0.5, 0.5),
        tiled=True,
        blockxsize=256,
        blockysize=256,
    ) as ds:
        ds.write(label.astype(np.uint8)[None] * 255)
    summaries = []
    for block in (256, 2048):
        code, out, err = run_cli(
            ["graph", str(mask), "-o", str(tmp_path / f"b{block}.geojson"), "--block", str(block), "--json"], capsys
        )
        assert code == 0, err
        summaries.append(json.loads(out))
    assert summaries[0]["edges"] == summaries[1]["edges"] > 100 and summaries[0]["nodes"] == summaries[1]["nodes"]
    assert summaries[0]["length_m"] == pytest.approx(summaries[1]["length_m"], rel=1e-3)  # border midpoints
    assert summaries[0]["length_m"] > 2000  # 0.5 m pixels: lengths in metres, not pixels


def test_pixel_space_graphs_are_scored_in_pixels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A scene without georeference gives graphs in pixel coordinates, marked as such in GeoJSON
    (``pixel_coordinates``; GraphML: no crs): sam2ms apls scores two of them in pixels, whatever
    their format, instead of reading [289.8, 168.8] as longitude/latitude.
    """
    from PIL import Image

    from pixelwise import pixelwise_onnx

    img = np.empty((100, 700, 3), np.uint8)
    img[:] = LAND
    img[45:55, 5:695] = ROAD
    (tmp_path / "in").mkdir()
    Image.fromarray(img).save(tmp_path / "in" / "scene.png")
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    for fmt in ("geojson", "graphml"):
        code, _, err = run_cli(
            ["infer", model, str(tmp_path / "in"), "-o", str(tmp_path / fmt), "--format", fmt, "--quiet"], capsys
        )
        assert code == 0, err
    gj = tmp_path / "geojson" / "scene.graph.geojson"
    doc = json.loads(gj.read_text())
    assert doc["pixel_coordinates"] is True and "crs" not in doc
    for other in (gj, tmp_path / "graphml" / "scene.graph.graphml"):
        code, out, err = run_cli(["apls", str(gj), str(other), "--json"], capsys)
        assert code == 0 and "Traceback" not in err, err
        assert json.loads(out)["apls"] == pytest.approx(1.0)
    code, _, err = run_cli(["apls", str(gj), str(_lonlat_grid(tmp_path / "lonlat.geojson"))], capsys)
    assert code == 2 and "no CRS while the other network has one" in err


def test_one_run_gives_the_georeferenced_mask_and_its_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--format tif --graph geojson``: the COG mask and the graph (read back from it by blocks) in one
    run; the README's next step, ``sam2ms graph OUT/scene.mask.tif``, gives the same graph; graphing a
    PNG mask (no georeference) warns that its lengths are pixels.
    """
    from pixelwise import pixelwise_onnx

    src = _road_scene(tmp_path / "in" / "scene.tif")
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    code, out, err = run_cli(
        [
            "infer",
            model,
            str(src),
            "-o",
            str(tmp_path / "out"),
            "--format",
            "tif",
            "--graph",
            "geojson",
            "--quiet",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scene.graph.geojson", "scene.mask.tif"]
    assert json.loads(out)["settings"]["graph"] == "geojson"
    one_run = json.loads((tmp_path / "out" / "scene.graph.geojson").read_text())
    assert one_run["crs"]["properties"]["name"] == "EPSG:32633"
    code, out, err = run_cli(
        ["graph", str(tmp_path / "out" / "scene.mask.tif"), "-o", str(tmp_path / "g.geojson"), "--json"], capsys
    )
    assert code == 0 and json.loads(out)["units"] == "metres", err
    assert json.loads((tmp_path / "g.geojson").read_text())["features"] == one_run["features"]
    code, _, err = run_cli(["infer", model, str(src), "-o", str(tmp_path / "png"), "--quiet"], capsys)
    code, out, err = run_cli(
        ["graph", str(tmp_path / "png" / "scene.mask.png"), "-o", str(tmp_path / "p.geojson"), "--json"], capsys
    )
    assert code == 0 and json.loads(out)["units"] == "pixels" and "no georeference" in err
