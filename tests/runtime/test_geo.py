"""Real rasters through sam2ms-infer: 16-bit many-band scenes, nodata, COG outputs, VRT mosaics, stats."""

import json
from pathlib import Path

import numpy as np
import pytest

from sam2ms.data.synth import render_road_scene
from sam2ms.errors import UsageError

from conftest import has_module, run_cli
from pixelwise import expected_probability, pixelwise_onnx

pytestmark = pytest.mark.skipif(not has_module("rasterio"), reason="rasterio not installed (pip install 'sam2ms[geo]')")

TILE = 64


def write_geotiff(
    path: Path,
    bands: np.ndarray,
    *,
    nodata: float | None = None,
    colorinterp: tuple | None = None,
    origin: tuple[float, float] = (500_000.0, 4_000_000.0),
    res: float = 0.5,
) -> Path:
    """A georeferenced (UTM 33N) GeoTIFF of ``bands`` (C x H x W)."""
    import rasterio
    from rasterio.transform import from_origin

    c, h, w = bands.shape
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=h,
        width=w,
        count=c,
        dtype=str(bands.dtype),
        crs="EPSG:32633",
        transform=from_origin(*origin, res, res),
        nodata=nodata,
        tiled=True,
        blockxsize=64,
        blockysize=64,
    ) as ds:
        ds.write(bands)
        if colorinterp:
            from rasterio.enums import ColorInterp

            ds.colorinterp = [getattr(ColorInterp, name) for name in colorinterp]
    return path


def uint16_scene(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 4-band (blue, green, red, NIR) 12-bit scene from a synthetic road scene, and its 8-bit RGB
    as a 0:4095 scale gives it back (x * 16 + 8 -> rint((x * 16 + 8) * 255 / 4095)).
    """
    rgb, _ = render_road_scene(h, w, np.random.default_rng(seed))
    raw = rgb.astype(np.uint16) * 16 + 8
    bands = np.stack([raw[..., 2], raw[..., 1], raw[..., 0], raw[..., 1] // 2 + 7])
    expected = np.clip(np.rint(raw.astype(np.float32) * np.float32(255 / 4095)), 0, 255).astype(np.uint8)
    return bands, expected


def _infer(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    code, out, err = run_cli(["infer", *args, "--json", "--quiet"], capsys)
    return code, (json.loads(out) if out.strip().startswith("{") else {}), err


def test_uint16_four_band_scene_with_nodata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import rasterio
    from rio_cogeo.cogeo import cog_validate

    from sam2ms.runtime.tiling import Grid

    h, w = 1100, 1300
    bands, rgb = uint16_scene(h, w, 4)
    valid = np.ones((h, w), bool)
    valid[:, :600] = False  # the left of the mosaic is empty
    valid[900:, 1000:] = False
    bands[:, ~valid] = 0
    src = write_geotiff(
        tmp_path / "in" / "scene.tif", bands, nodata=0, colorinterp=("blue", "green", "red", "undefined")
    )
    code, summary, err = _infer(
        [
            str(pixelwise_onnx(tmp_path / "px.onnx", TILE)),
            str(src),
            "-o",
            str(tmp_path / "out"),
            "--format",
            "tif",
            "--probabilities",
            "--scale",
            "0:4095",
            "--overlap",
            "8",
        ],
        capsys,
    )
    assert code == 0, err
    grid = Grid(h, w, TILE, 8)
    empty = sum(not valid[y : y + TILE, x : x + TILE].any() for _, y, x in grid.windows())
    assert summary["empty_windows"] == empty > 0 and summary["tiles"] == len(grid) - empty
    assert summary["radiometry"]["stretch"] == "fixed" and summary["stage_seconds"]["overviews"] > 0
    expected = expected_probability(rgb)
    for name, resampling in (("scene.mask.tif", "nearest"), ("scene.prob.tif", "average")):
        path = tmp_path / "out" / name
        ok, errors, _ = cog_validate(path, strict=True)
        assert ok, errors
        with rasterio.open(path) as ds:
            assert ds.crs.to_epsg() == 32633 and ds.transform == rasterio.open(src).transform
            assert ds.profile["tiled"] and ds.overviews(1) == [2, 4]
            assert ds.tags(ns="IMAGE_STRUCTURE").get("COMPRESSION", ds.compression.name).upper() == "DEFLATE"
            assert np.array_equal(ds.read_masks(1) > 0, valid)  # exactly the input's nodata area
            assert json.loads(ds.tags()["SAM2MS_RADIOMETRY"]) == {
                "bands": [3, 2, 1],
                "low": [0.0] * 3,
                "high": [4095.0] * 3,
            }
            out = ds.read(1)
        with rasterio.open(path, overview_level=0) as ov:  # the 2x overview, built from the file
            half = ov.read(1).astype(np.float64)
        blocks = out[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).astype(np.float64)
        full_blocks = valid[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).all(axis=(1, 3))
        if resampling == "nearest":
            assert set(np.unique(half)) <= {0, 255}
        else:
            assert np.abs(half - blocks.mean(axis=(1, 3)))[full_blocks].max() <= 1.0
        assert (out[~valid] == 0).all()
        if name == "scene.prob.tif":
            assert np.abs(out[valid] / 255 - expected[valid]).max() <= 0.5 / 255 + 1e-6
        else:
            assert ((out[valid] == 255) == (expected[valid] >= 0.5)).mean() > 0.999
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left


def test_same_bytes_reach_the_model_in_training_calibration_and_runtime(tmp_path: Path) -> None:
    from sam2ms.calib.data import calibration_images, sample_windows
    from sam2ms.data.dataset import load_sample
    from sam2ms.data.layouts import Sample
    from sam2ms.geo.radiometry import Radiometry
    from sam2ms.geo.rasters import open_scene
    from sam2ms.runtime.scenes import iter_windows
    from sam2ms.runtime.tiling import Grid

    bands, _ = uint16_scene(128, 192, 5)
    src = write_geotiff(tmp_path / "scenes" / "s.tif", bands)
    radiometry = Radiometry(stretch="percentile")
    scene = open_scene(src, radiometry)
    runtime = {(y, x): win for _, y, x, win, _ in iter_windows(scene, Grid(128, 192, TILE, 0))}
    whole, _ = scene.read(0, 0, 128, 192)
    scene.close()
    mask = write_geotiff(tmp_path / "m.tif", np.zeros((1, 128, 192), np.uint8))
    trained, _ = load_sample(Sample(src, mask, (64, 0, 64)), radiometry)
    assert np.array_equal(trained, runtime[(0, 64)])
    calib = sample_windows(calibration_images(tmp_path / "scenes"), TILE, [6], radiometry=radiometry)[0]
    assert sorted(t.tobytes() for t in calib) == sorted(t.tobytes() for t in runtime.values())
    assert whole.dtype == np.uint8 and whole.std() > 20  # a real stretch, not a blank


def test_float_and_single_band_scenes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rgb, _ = render_road_scene(100, 90, np.random.default_rng(6))
    refl = (rgb.astype(np.float32) / 255 * 0.6).transpose(2, 0, 1)  # reflectance-like floats
    write_geotiff(tmp_path / "in" / "float.tif", refl)
    write_geotiff(tmp_path / "in" / "grey.tif", rgb[None, ..., 1].astype(np.uint16) * 4)
    code, summary, err = _infer(
        [
            str(pixelwise_onnx(tmp_path / "px.onnx", TILE)),
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--format",
            "tif",
        ],
        capsys,
    )
    assert code == 0 and summary["files"] == 2, err
    assert summary["radiometry"]["stretch"] == "auto"


def test_vrt_mosaic_runs_as_one_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import rasterio

    bands, _ = uint16_scene(200, 260, 7)
    whole = write_geotiff(tmp_path / "whole" / "scene.tif", bands)
    tiles = [
        write_geotiff(
            tmp_path / "tiles" / f"t{i}{j}.tif",
            bands[:, i * 100 : (i + 1) * 100, j * 130 : (j + 1) * 130],
            origin=(500_000.0 + j * 130 * 0.5, 4_000_000.0 - i * 100 * 0.5),
        )
        for i in range(2)
        for j in range(2)
    ]
    code, _out, err = run_cli(["mosaic", *map(str, tiles), "-o", str(tmp_path / "mosaic.vrt"), "--json"], capsys)
    assert code == 0, err
    with rasterio.open(tmp_path / "mosaic.vrt") as ds:  # GDAL reads it back as the scene
        assert (ds.width, ds.height) == (260, 200) and np.array_equal(ds.read(), bands)
    model = str(pixelwise_onnx(tmp_path / "px.onnx", TILE))
    for src, out_dir in ((whole, "a"), (tmp_path / "mosaic.vrt", "b")):
        code, _, err = _infer(
            [model, str(src), "-o", str(tmp_path / out_dir), "--format", "tif", "--scale", "0:4095", "--probabilities"],
            capsys,
        )
        assert code == 0, err
    with rasterio.open(tmp_path / "a" / "scene.prob.tif") as a, rasterio.open(tmp_path / "b" / "mosaic.prob.tif") as b:
        assert np.array_equal(a.read(), b.read()) and a.transform == b.transform
    tiles[3].unlink()
    code, _, err = _infer([model, str(tmp_path / "mosaic.vrt"), "-o", str(tmp_path / "c")], capsys)
    assert code == 2 and "mosaic member" in err and "t11.tif" in err and "Traceback" not in err


def test_all_nodata_scene_is_refused_and_nothing_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = write_geotiff(tmp_path / "in" / "empty.tif", np.zeros((3, 80, 80), np.uint8), nodata=0)
    model = str(pixelwise_onnx(tmp_path / "px.onnx", TILE))
    code, _, err = _infer([model, str(empty), "-o", str(tmp_path / "out"), "--format", "tif"], capsys)
    assert code == 2 and "empty.tif: no valid pixels" in err
    assert not list((tmp_path / "out").iterdir())  # nothing half-written
    write_geotiff(tmp_path / "in" / "good.tif", np.full((3, 80, 80), 9, np.uint8), nodata=0)
    code, summary, err = _infer([model, str(tmp_path / "in"), "-o", str(tmp_path / "out2"), "--format", "tif"], capsys)
    assert code == 1 and summary["files"] == 1 and summary["failed"] == 1
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["good.mask.tif"]


def test_band_beyond_count_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_geotiff(tmp_path / "s.tif", np.zeros((3, 70, 70), np.uint16))
    code, _, err = _infer(
        [str(pixelwise_onnx(tmp_path / "px.onnx", TILE)), str(src), "-o", str(tmp_path / "out"), "--bands", "4,3,2"],
        capsys,
    )
    assert code == 2 and "s.tif: band 4 asked for" in err and "Traceback" not in err


def test_stats_normalise_every_scene_alike(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        bands, _ = uint16_scene(90, 120, 10 + i)
        write_geotiff(tmp_path / "in" / f"s{i}.tif", bands * (i + 1), nodata=0)  # different brightness per scene
    code, _out, err = run_cli(
        ["stats", str(tmp_path / "in"), "--bands", "3,2,1", "-o", str(tmp_path / "stats.json"), "--json", "--quiet"],
        capsys,
    )
    assert code == 0, err
    stats = json.loads((tmp_path / "stats.json").read_text())
    pooled = np.concatenate(
        [(uint16_scene(90, 120, 10 + i)[0][[2, 1, 0]] * (i + 1)).reshape(3, -1) for i in range(3)], axis=1
    )
    assert stats["bands"] == [3, 2, 1] and stats["pixels_sampled"] == pooled.shape[1]
    assert np.allclose(stats["low"], np.percentile(pooled, 2, axis=1))
    assert np.allclose(stats["high"], np.percentile(pooled, 98, axis=1))
    model = str(pixelwise_onnx(tmp_path / "px.onnx", TILE))
    code, summary, err = _infer(
        [model, str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--stats", str(tmp_path / "stats.json")], capsys
    )
    assert code == 0 and summary["radiometry"]["low"] == stats["low"], err
    code, _, err = _infer(
        [
            model,
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out2"),
            "--stats",
            str(tmp_path / "stats.json"),
            "--bands",
            "1,2,3",
        ],
        capsys,
    )
    assert code == 2 and "made for bands 3,2,1" in err


def test_trained_conversion_travels_to_the_deployment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Checkpoint -> sidecar -> runtime default; flags still override it."""
    import torch

    from sam2ms.artifacts import read_sidecar
    from sam2ms.export.pipeline import ExportOptions, run_export
    from sam2ms.geo.radiometry import Radiometry
    from sam2ms.models import create_model
    from sam2ms.models.checkpoint import save_checkpoint

    trained = Radiometry(bands=(3, 2, 1), stretch="percentile", percentiles=(1.0, 99.0))
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        tmp_path / "n.pt",
        create_model("sam2ms_nano"),
        image_size=TILE,
        epoch=0,
        step=0,
        extra={"radiometry": trained.as_dict()},
    )
    run_export(ExportOptions(ckpt=ckpt, out=tmp_path / "x", tile=TILE, onnx_only=True, check_tiles=1))
    assert read_sidecar(tmp_path / "x" / "model.onnx")["radiometry"] == trained.as_dict()
    bands, _ = uint16_scene(70, 80, 8)
    src = write_geotiff(tmp_path / "s.tif", bands)
    code, summary, err = _infer([str(tmp_path / "x" / "model.onnx"), str(src), "-o", str(tmp_path / "o1")], capsys)
    assert code == 0 and Radiometry.from_dict(summary["radiometry"]) == trained, err
    code, summary, err = _infer(
        [str(tmp_path / "x" / "model.onnx"), str(src), "-o", str(tmp_path / "o2"), "--stretch", "minmax"], capsys
    )
    assert code == 0 and summary["radiometry"]["stretch"] == "minmax" and summary["radiometry"]["bands"] == [3, 2, 1]


@pytest.mark.parametrize("kind", ["alpha", "internal_mask", "nodata"])
def test_every_kind_of_nodata_gives_the_valid_mask(tmp_path: Path, kind: str) -> None:
    import rasterio
    from rasterio.enums import ColorInterp

    from sam2ms.calib.data import calibration_images, sample_windows
    from sam2ms.geo.rasters import open_scene

    rgb, _ = render_road_scene(128, 128, np.random.default_rng(9))
    bands = np.moveaxis(rgb, -1, 0).copy()
    valid = np.zeros((128, 128), bool)
    valid[10:60, 5:100] = True  # of the four 64² windows only the top two hold valid pixels
    path = tmp_path / "in" / f"{kind}.tif"
    path.parent.mkdir()
    profile = {"driver": "GTiff", "height": 128, "width": 128, "dtype": "uint8"}
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        if kind == "alpha":
            with rasterio.open(path, "w", count=4, photometric="RGB", alpha="YES", **profile) as ds:
                ds.write(np.concatenate([bands, valid[None].astype(np.uint8) * 255]))
                ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
        elif kind == "internal_mask":
            with rasterio.open(path, "w", count=3, **profile) as ds:
                ds.write(bands)
                ds.write_mask(valid.astype(np.uint8) * 255)
        else:
            bands[:, ~valid] = 0
            bands[:, valid] = np.maximum(bands[:, valid], 1)
            with rasterio.open(path, "w", count=3, nodata=0, **profile) as ds:
                ds.write(bands)
    scene = open_scene(path)
    image, got = scene.read(0, 0, 128, 128)
    assert got is not None and scene.masked and scene.stretch.bands == (1, 2, 3) and np.array_equal(got, valid)
    assert np.array_equal(image[valid], np.moveaxis(bands, 0, -1)[valid])
    scene.close()
    # calibration leaves the windows without a valid pixel out: 2 of the 4 windows can be drawn
    assert len(sample_windows(calibration_images(path.parent), TILE, [2])[0]) == 2
    with pytest.raises(UsageError, match="2 usable 64px tiles, 3 needed"):
        sample_windows(calibration_images(path.parent), TILE, [3])


def test_mosaic_of_float_tiles_with_nan_nodata(tmp_path: Path) -> None:
    import rasterio

    from sam2ms.geo.mosaic import build_vrt

    tiles = [
        write_geotiff(
            tmp_path / f"t{j}.tif",
            np.full((1, 10, 10), j + 1, np.float32),
            nodata=float("nan"),
            origin=(500_000.0 + j * 5.0, 4_000_000.0),
        )
        for j in range(2)
    ]
    build_vrt(tiles, tmp_path / "m.vrt")  # NaN nodata is the same nodata in both members
    with rasterio.open(tmp_path / "m.vrt") as ds:
        assert ds.width == 20 and np.isnan(ds.nodata) and ds.read(1)[0, [0, 15]].tolist() == [1.0, 2.0]
