"""Rasters from strangers: the memory an image takes is bounded from its header, before a byte of it
is decoded, and whole-scene outputs are refused up front when they cannot fit.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from sam2ms.errors import UsageError

from conftest import has_module, run_cli
from pixelwise import pixelwise_onnx

pytestmark = pytest.mark.core  # runs without torch: make test-core


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A few hundred bytes of PNG whose header claims ``width`` x ``height`` RGB pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture()
def never_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("the image was decoded"))


def _infer(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code, _, err = run_cli(["infer", *args, "--quiet"], capsys)
    assert "Traceback" not in err
    return code, err


def test_a_png_bomb_is_refused_from_its_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], never_decoded: None
) -> None:
    bomb = png_claiming(tmp_path / "bomb.png", 200_000, 200_000)
    assert bomb.stat().st_size < 1000
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    code, err = _infer([str(model), str(bomb), "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and "bomb.png: 200000 x 200000 pixels would take" in err and "--max-pixels" in err
    with pytest.raises(UsageError, match="200000 x 200000"):  # training and evaluation read labels the same way
        from sam2ms.labels import read_mask

        read_mask(bomb)


def test_max_pixels_sets_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scene = tmp_path / "in" / "scene.png"
    scene.parent.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (200, 300, 3), np.uint8)).save(scene)
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    code, err = _infer([model, str(scene), "-o", str(tmp_path / "a"), "--max-pixels", "1000"], capsys)
    assert code == 2 and "300 x 200 pixels" in err and "more than --max-pixels 1000" in err
    assert _infer([model, str(scene), "-o", str(tmp_path / "b"), "--max-pixels", "60000"], capsys)[0] == 0
    from sam2ms import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 100_000)  # the default: half of what is available
    code, err = _infer([model, str(scene), "-o", str(tmp_path / "c")], capsys)
    assert code == 2 and "more than half the memory available now" in err
    assert _infer([model, str(scene), "-o", str(tmp_path / "d"), "--max-pixels", "60000"], capsys)[0] == 0


@pytest.mark.skipif(not has_module("rasterio"), reason="needs rasterio ([geo])")
def test_a_whole_scene_output_that_cannot_fit_is_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 200 000 x 200 000 tiled GeoTIFF (sparse: a few KB) read by windows is fine, and so is its PNG
    mask, written as its rows come; but a road graph of a PNG run is made from the mask held whole,
    which would take 37 GiB: refused before any window, pointing to --format tif.
    """
    import rasterio

    huge = tmp_path / "huge.tif"
    with rasterio.open(
        huge,
        "w",
        driver="GTiff",
        width=200_000,
        height=200_000,
        count=3,
        dtype="uint8",
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
        sparse_ok=True,
        photometric="RGB",
    ):
        pass
    assert huge.stat().st_size < 10_000_000
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    code, err = _infer([model, str(huge), "-o", str(tmp_path / "out"), "--format", "geojson"], capsys)
    assert code == 2, err
    assert "huge.tif: its --graph geojson from a --format png mask: 200000 x 200000 pixels would take 37.3 GiB" in err
    assert "use --format tif --graph geojson" in err
    assert not list((tmp_path / "out").glob("*.png"))


def test_stac_items_name_outputs_only_inside_the_output_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "a.png")
    item = {"type": "Feature", "id": "../../escaped", "assets": {"image": {"href": "a.png", "type": "image/png"}}}
    (tmp_path / "item.json").write_text(json.dumps(item))
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    out = tmp_path / "deep" / "out"
    code, err = _infer([model, str(tmp_path / "item.json"), "-o", str(out)], capsys)
    assert code == 0, err
    assert [p.name for p in out.iterdir()] == ["_.._.._escaped.mask.png"] and not list(tmp_path.glob("escaped*"))
    item["assets"] = {"image": "a.png"}  # an asset that is not an object
    (tmp_path / "item.json").write_text(json.dumps(item))
    code, err = _infer([model, str(tmp_path / "item.json"), "-o", str(out)], capsys)
    assert code == 2 and "no raster assets" in err
