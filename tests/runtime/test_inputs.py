"""INPUT beyond files and folders: @lists, STAC items, GDAL virtual paths and URLs (served from a
local HTTP server and a zip archive here; /vsis3/ and /vsigs/ go through the same GDAL reader).
"""

import json
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2ms.data.synth import render_road_scene
from sam2ms.errors import UsageError
from sam2ms.geo.inputs import names_one_raster, resolve_inputs
from sam2ms.geo.rasters import gdal_path

from conftest import has_module, run_cli
from pixelwise import pixelwise_onnx

pytestmark = pytest.mark.core  # runs without torch: make test-core

needs_gdal = pytest.mark.skipif(not has_module("rasterio"), reason="rasterio not installed (pip install 'sam2ms[geo]')")


def _png(path: Path, seed: int) -> Path:
    img, _ = render_road_scene(100, 120, np.random.default_rng(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def _tif(path: Path, seed: int) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    img, _ = render_road_scene(100, 120, np.random.default_rng(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=100,
        width=120,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(500_000, 4_000_000, 0.5, 0.5),
    ) as ds:
        ds.write(np.moveaxis(img, -1, 0))
    return path


def test_list_file_resolves_relative_entries_and_skips_comments(tmp_path: Path) -> None:
    a, b = _png(tmp_path / "scenes" / "a.png", 1), _png(tmp_path / "more" / "b.png", 2)
    listing = tmp_path / "scenes.txt"
    listing.write_text(f"# the scenes of a job\nscenes/a.png\n\n{b}\nscenes/a.png\n")
    inputs = resolve_inputs(f"@{listing}")
    assert [(i.path, i.name) for i in inputs] == [(tmp_path / "scenes" / "a.png", Path("a")), (b, Path("b"))]
    assert not names_one_raster(f"@{listing}") and names_one_raster(str(a))
    (tmp_path / "clash").mkdir()
    _png(tmp_path / "clash" / "a.png", 3)
    listing.write_text("scenes/a.png\nclash/a.png\n")
    with pytest.raises(UsageError, match="would write the same outputs"):
        resolve_inputs(f"@{listing}")
    with pytest.raises(UsageError, match="cannot read the input list"):
        resolve_inputs(f"@{tmp_path / 'missing.txt'}")


def test_stac_item_collection_picks_the_asset_and_names_outputs_by_item(tmp_path: Path) -> None:
    _png(tmp_path / "data" / "x" / "visual.png", 1)
    _png(tmp_path / "data" / "y" / "visual.png", 2)

    def item(name: str) -> dict:
        return {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": f"scene-{name}",
            "geometry": None,
            "properties": {},
            "assets": {
                "visual": {"href": f"data/{name}/visual.png", "type": "image/png", "roles": ["visual"]},
                "thumbnail": {"href": f"data/{name}/thumb.jpg", "type": "image/jpeg"},
                "metadata": {"href": f"data/{name}/meta.xml", "type": "application/xml"},
            },
        }

    stac = tmp_path / "items.json"
    stac.write_text(json.dumps({"type": "FeatureCollection", "features": [item("x"), item("y")]}))
    inputs = resolve_inputs(str(stac), "visual")
    assert [(i.path, i.name) for i in inputs] == [
        (tmp_path / "data" / "x" / "visual.png", Path("scene-x")),
        (tmp_path / "data" / "y" / "visual.png", Path("scene-y")),
    ]
    with pytest.raises(UsageError, match=r"2 raster assets.*--stac-asset"):
        resolve_inputs(str(stac))  # visual and thumbnail are both images
    with pytest.raises(UsageError, match=r"no asset 'B04'.*visual, thumbnail, metadata"):
        resolve_inputs(str(stac), "B04")
    (tmp_path / "bad.json").write_text(json.dumps({"type": "FeatureCollection", "features": [{"id": 1}]}))
    with pytest.raises(UsageError, match="not a STAC Item"):
        resolve_inputs(str(tmp_path / "bad.json"))


def test_urls_become_gdal_paths() -> None:
    got = {
        u: resolve_inputs(u)[0]
        for u in ("s3://bucket/tiles/a.tif", "gs://b/c.tif", "https://host/x/scene.tif", "/vsiaz/container/d.tif")
    }
    assert [gdal_path(i.path) for i in got.values()] == [
        "/vsis3/bucket/tiles/a.tif",
        "/vsigs/b/c.tif",
        "/vsicurl/https://host/x/scene.tif",
        "/vsiaz/container/d.tif",
    ]
    assert [str(i.name) for i in got.values()] == ["a", "c", "scene", "d"]
    with pytest.raises(UsageError, match="not a raster name"):
        resolve_inputs("s3://bucket/tiles/")


@pytest.fixture()
def http_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on localhost by another process (GDAL's requests hold the GIL: a
    server thread in this process would wait on them), with no proxy for it.
    """
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    folder = tmp_path / "served"
    folder.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield folder, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


@needs_gdal
def test_infer_reads_urls_zip_members_and_lists_of_them(
    tmp_path: Path, http_folder: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, url = http_folder
    _tif(folder / "remote.tif", 1)
    _tif(tmp_path / "member.tif", 2)
    with zipfile.ZipFile(tmp_path / "scenes.zip", "w") as z:
        z.write(tmp_path / "member.tif", "member.tif")
    local = _tif(tmp_path / "local" / "remote.tif", 1)  # the same pixels as the served one
    listing = tmp_path / "job.txt"
    listing.write_text(f"{url}/remote.tif\n/vsizip/{tmp_path / 'scenes.zip'}/member.tif\n")
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    code, out, err = run_cli(["infer", model, f"@{listing}", "-o", str(tmp_path / "out"), "--json", "--quiet"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["files"] == 2 and summary["failed"] == 0
    code, _, err = run_cli(["infer", model, str(local), "-o", str(tmp_path / "ref"), "--quiet"], capsys)
    assert code == 0, err
    assert (tmp_path / "out" / "remote.mask.png").read_bytes() == (tmp_path / "ref" / "remote.mask.png").read_bytes()
    assert (tmp_path / "out" / "member.mask.png").is_file()
    # a missing remote scene fails by its URL, with exit 2 (it was the only input)
    code, _, err = run_cli(["infer", model, f"{url}/absent.tif", "-o", str(tmp_path / "x"), "--quiet"], capsys)
    assert code == 2 and "/vsicurl/http://127.0.0.1" in err and "absent.tif" in err and "Traceback" not in err
