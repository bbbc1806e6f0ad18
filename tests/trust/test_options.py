"""Every numeric option is bounded before any file is opened or any library sees it (``--threads -1``
once reached OpenVINO): a bad value is exit 2 naming the option. ``infer``'s are checked by its
options' own ``check_flags`` / ``validate`` (so a run built in Python gets them too), the other
commands' where typer parses them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from pixelwise import pixelwise_onnx

pytestmark = pytest.mark.core  # runs without torch: make test-core

# (command line, the option its error must name); files need not exist: parsing comes first
BAD = [
    (["infer", "m.onnx", "in", "-o", "out", "--threads", "-1"], "--threads"),
    (["infer", "m.onnx", "in", "-o", "out", "--batch", "0"], "--batch"),
    (["infer", "m.onnx", "in", "-o", "out", "--streams", "0"], "--streams"),
    (["infer", "m.onnx", "in", "-o", "out", "--workers", "0"], "--workers"),
    (["infer", "m.onnx", "in", "-o", "out", "--overlap", "-8"], "--overlap"),
    (["infer", "m.onnx", "in", "-o", "out", "--threshold", "1.5"], "--threshold"),
    (["infer", "m.onnx", "in", "-o", "out", "--tile", "0"], "--tile"),
    (["infer", "m.onnx", "in", "-o", "out", "--max-pixels", "0"], "--max-pixels"),
    (["infer", "m.onnx", "in", "-o", "out", "--check-tiles", "0"], "--check-tiles"),
    (["infer", "m.onnx", "in", "-o", "out", "--ray-actors", "0"], "--ray-actors"),
    (["export", "--ckpt", "x.pt", "-o", "out", "--tile", "-32"], "--tile"),
    (["export", "--ckpt", "x.pt", "-o", "out", "--opset", "5"], "--opset"),
    (["export", "--ckpt", "x.pt", "-o", "out", "--check-tiles", "0"], "--check-tiles"),
    (["calibrate", "m.onnx", "--calib-data", "d", "-o", "out", "--holdout", "0"], "--holdout"),
    (["calibrate", "m.onnx", "--calib-data", "d", "-o", "out", "--seed", "-1"], "--seed"),
    (["train", "--data", "d", "-o", "out", "--epochs", "0"], "--epochs"),
    (["train", "--data", "d", "-o", "out", "--batch", "0"], "--batch"),
    (["train", "--data", "d", "-o", "out", "--hflip", "2"], "--hflip"),
    (["eval", "--ckpt", "x.pt", "--data", "d", "--batch", "0"], "--batch"),
    (["bench", "m.onnx", "--iterations", "0"], "--iterations"),
    (["bench", "m.onnx", "--threads", "0"], "--threads"),
    (["graph", "m.tif", "-o", "g.geojson", "--threshold", "-0.5"], "--threshold"),
    (["synth", "out", "--count", "0"], "--count"),
    (["demo", "--epochs", "0"], "--epochs"),
    (["info", "sam2ms_nano", "--size", "0"], "--size"),
]


@pytest.mark.parametrize("args,option", BAD, ids=[f"{a[0]} {o}" for a, o in BAD])
def test_bad_numbers_are_refused_at_parse_time(
    args: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(args, capsys)
    assert code == 2 and option in err and "Traceback" not in err, err


def test_bounds_that_depend_on_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--overlap must stay below the model's tile (from its sidecar), checked before any input is read."""
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "a.png")
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    code, _, err = run_cli(
        ["infer", model, str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--overlap", "64"], capsys
    )
    assert code == 2 and "--overlap 64: must be in [0, tile=64)" in err
    assert not (tmp_path / "out").exists()
