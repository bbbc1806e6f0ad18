"""The command line: JSON summaries, and one-line errors with exit code 2 for bad input."""

import json
from pathlib import Path

import numpy as np
import pytest

from sam2ms.models import create_model
from sam2ms.models.checkpoint import save_checkpoint

from conftest import run_cli, save, scene

TRAIN = ["train", "--model", "sam2ms_nano", "--image-size", "32", "--epochs", "1", "--lossnet", "none", "--quiet"]


def _assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_info_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["info", "sam2ms_nano", "--size", "64", "--json"], capsys)
    assert code == 0
    s = json.loads(out)
    assert s["params_total"] > s["params_trainable"] > 0 and s["gflops"] > 0


def test_synth_then_train_then_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d"
    assert run_cli(["synth", str(data), "--count", "4", "--size", "32", "--seed", "1"], capsys)[0] == 0
    code, out, err = run_cli([*TRAIN, "--data", str(data), "-o", str(tmp_path / "r"), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["steps"] == 2
    code, out, err = run_cli(
        [
            "eval",
            "--ckpt",
            str(tmp_path / "r" / "last.pt"),
            "--data",
            str(data),
            "--split",
            "all",
            "--json",
            "--quiet",
            "--apls",
        ],
        capsys,
    )
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["images"] == 4 and 0 <= metrics["f1"] <= 1 and metrics["image_size"] == 32
    assert 0 <= metrics["apls_min"] <= metrics["apls"] <= 1 and 0 <= metrics["topo_f1"] <= 1
    assert metrics["topo_tp"] + metrics["topo_fn"] > 0  # the labels' graphs have holes


def test_missing_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli([*TRAIN, "--data", str(tmp_path / "nope"), "-o", str(tmp_path / "r")], capsys)
    _assert_one_line_error(code, err, "nope", "not found")
    assert not (tmp_path / "r").exists()


def test_empty_data_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d" / "images").mkdir(parents=True)
    (tmp_path / "d" / "masks").mkdir()
    code, _, err = run_cli([*TRAIN, "--data", str(tmp_path / "d"), "-o", str(tmp_path / "r")], capsys)
    _assert_one_line_error(code, err, "no image/mask pairs")


def test_image_without_mask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(tmp_path / "d" / "images" / "lonely.png", scene(0, 32)[0])
    (tmp_path / "d" / "masks").mkdir()
    code, _, err = run_cli([*TRAIN, "--data", str(tmp_path / "d"), "-o", str(tmp_path / "r")], capsys)
    _assert_one_line_error(code, err, "lonely.png", "no mask")


def test_mask_of_other_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(tmp_path / "d" / "images" / "a.png", scene(0, 32)[0])
    save(tmp_path / "d" / "masks" / "a.png", np.zeros((64, 64), np.uint8))
    code, _, err = run_cli([*TRAIN, "--data", str(tmp_path / "d"), "-o", str(tmp_path / "r")], capsys)
    _assert_one_line_error(code, err, "a.png", "64x64", "32x32")


def test_image_without_colour_bands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two bands, neither marked as colour: refused by name before training starts (--bands fixes it)."""
    rasterio = pytest.importorskip("rasterio", reason="rasterio not installed (pip install 'sam2ms[geo]')")
    (tmp_path / "d" / "images").mkdir(parents=True)
    with rasterio.open(
        tmp_path / "d" / "images" / "two.tif", "w", driver="GTiff", width=32, height=32, count=2, dtype="uint16"
    ) as ds:
        ds.write(np.zeros((2, 32, 32), np.uint16))
    save(tmp_path / "d" / "masks" / "two.png", np.zeros((32, 32), np.uint8))
    code, _, err = run_cli([*TRAIN, "--data", str(tmp_path / "d"), "-o", str(tmp_path / "r")], capsys)
    _assert_one_line_error(code, err, "two.tif", "2 bands", "--bands")
    code, _, err = run_cli(
        [*TRAIN, "--data", str(tmp_path / "d"), "-o", str(tmp_path / "r"), "--bands", "3,2,1"], capsys
    )
    _assert_one_line_error(code, err, "two.tif", "band 3 asked for")


def test_unknown_model(synth_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [a if a != "sam2ms_nano" else "sam2ms_giant" for a in TRAIN]
    code, _, err = run_cli([*args, "--data", str(synth_folder), "-o", str(tmp_path / "r")], capsys)
    _assert_one_line_error(code, err, "sam2ms_giant", "sam2ms_hiera_l")
    code, _, err = run_cli(["info", "nope"], capsys)
    _assert_one_line_error(code, err, "unknown model 'nope'")


def test_size_not_multiple_of_32(synth_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [a if a != "32" else "50" for a in TRAIN]
    code, _, err = run_cli([*args, "--data", str(synth_folder), "-o", str(tmp_path / "r")], capsys)
    _assert_one_line_error(code, err, "--image-size 50", "multiple of 32")
    code, _, err = run_cli(["info", "sam2ms_nano", "--size", "100"], capsys)
    _assert_one_line_error(code, err, "multiple of 32")


def test_corrupt_checkpoint(synth_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = save_checkpoint(tmp_path / "good.pt", create_model("sam2ms_nano"), image_size=32, epoch=0, step=0)
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(good.read_bytes()[:1000])
    code, _, err = run_cli(["eval", "--ckpt", str(bad), "--data", str(synth_folder)], capsys)
    _assert_one_line_error(code, err, "truncated.pt", "not a readable PyTorch checkpoint")
    assert good.stat().st_size > 1000


def test_bad_flag_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["train", "--no-such-flag"], capsys)
    assert code == 2 and "Traceback" not in err


def test_messages_are_printed_as_text_not_markup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Rich reads "[1]" or "[geo]" as markup and drops it: every message is printed as text."""
    from pixelwise import pixelwise_onnx

    folder = tmp_path / "in"
    save(folder / "ok.png", scene(1, 64)[0])
    (folder / "scene[geo].png").write_bytes(b"not a png")
    code, _, err = run_cli(
        ["infer", str(pixelwise_onnx(tmp_path / "px.onnx", 64)), str(folder), "-o", str(tmp_path / "out"), "--quiet"],
        capsys,
    )
    assert code == 1 and "scene[geo].png: cannot read as an image" in err
    assert "1 input(s) failed (listed above); the other 1 were written" in err


def test_road_graph_commands_name_the_geo_extra(tmp_path: Path) -> None:
    import subprocess
    import sys

    road = {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[10, 50], [10.001, 50]]}}
    (tmp_path / "a.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [road]}))
    code = (
        "import sys; sys.modules['networkx'] = None; sys.argv = ['sam2ms', 'apls', 'a.geojson', 'a.geojson'];"
        "from sam2ms.cli import main; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "needs networkx" in proc.stderr and "sam2ms[geo]" in proc.stderr, proc.stderr


def test_small_mismatches_of_the_walkthrough(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A single INPUT that fails is one line; a graph is built from masks, not images; a missing
    local file is "not found" (no GDAL credentials hint); --streams beyond what a model runs is
    refused; a Hiera model without SAM2 weights is warned about.
    """
    import rasterio

    from pixelwise import pixelwise_onnx

    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    code, _, err = run_cli(["infer", model, str(tmp_path / "bad.png"), "-o", str(tmp_path / "o"), "--quiet"], capsys)
    _assert_one_line_error(code, err, "bad.png: cannot read as an image")
    rgb = tmp_path / "rgb.tif"
    with rasterio.open(rgb, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8") as ds:
        ds.write(np.zeros((3, 64, 64), np.uint8))
    code, _, err = run_cli(["graph", str(rgb), "-o", str(tmp_path / "g.geojson")], capsys)
    _assert_one_line_error(code, err, "3 bands", "single-band mask")
    code, _, err = run_cli(["graph", str(tmp_path / "none.tif"), "-o", str(tmp_path / "g.geojson")], capsys)
    _assert_one_line_error(code, err, "none.tif: file not found")
    assert "credentials" not in err
    ckpt = save_checkpoint(tmp_path / "n.pt", create_model("sam2ms_nano"), image_size=64, epoch=0, step=0)
    code, _, err = run_cli(
        ["infer", str(ckpt), model, "-o", str(tmp_path / "o"), "--streams", "2", "--tile", "64", "--quiet"], capsys
    )
    _assert_one_line_error(code, err, "--streams 2: n.pt runs at most 1 concurrent lane(s)")
    code, _, err = run_cli(
        ["train", "--data", str(tmp_path / "no-data"), "-o", str(tmp_path / "run"), "--model", "sam2ms_hiera_t"], capsys
    )
    assert code == 2 and "random frozen trunk" in err
