"""The OpenVINO backend: our ONNX files on OpenVINO, its knobs, BF16's refusals and accuracy gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pixelwise import expected_probability, pixelwise_onnx

from sam2ms.data.synth import render_road_scene
from sam2ms.errors import UsageError

from conftest import run_cli

ov = pytest.importorskip("openvino", reason="the [openvino] extra is not installed")

from sam2ms.runtime.backends import open_model  # noqa: E402
from sam2ms.runtime.backends.openvino_backend import bf16_gate, native_bf16  # noqa: E402

NATIVE_BF16 = native_bf16(ov.Core())


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "ov-cache"
    monkeypatch.setenv("SAM2MS_OPENVINO_CACHE", str(cache))
    return cache


def _infer(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    code, out, err = run_cli(["infer", *args, "--json", "--quiet"], capsys)
    return code, (json.loads(out) if out.strip().startswith("{") else {}), err


def _scene(path: Path, h: int, w: int, seed: int) -> np.ndarray:
    img, _ = render_road_scene(h, w, np.random.default_rng(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return img


def test_tiled_run_on_openvino_is_exact_with_concurrent_requests(tmp_path: Path, _cache: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    image = _scene(tmp_path / "in" / "big.png", 150, 230, 1)
    code, summary, err = _infer([str(model), str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--backend",
                                 "openvino", "--overlap", "16", "--batch", "3", "--streams", "2", "--threads", "2",
                                 "--probabilities"], capsys)
    assert code == 0, err
    described = summary["model"]
    assert (described["backend"], described["streams"], described["threads"], described["executed_precision"]) == \
        ("openvino", 2, 2, "f32")
    prob = np.asarray(Image.open(tmp_path / "out" / "big.prob.png")).astype(np.float64) / 255
    assert np.abs(prob - expected_probability(image)).max() <= 0.5 / 255 + 1e-6
    assert any(_cache.iterdir())  # the compiled model was cached for the next process


def test_exported_model_agrees_with_onnxruntime_and_pytorch(trained_nano: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from sam2ms.export.pipeline import ExportOptions, run_export

    summary = run_export(ExportOptions(ckpt=trained_nano, out=tmp_path / "exp", tile=64, onnx_only=True,
                                       check_tiles=2, openvino=True))
    assert summary["passed"]
    side = json.loads((tmp_path / "exp" / "model.onnx.json").read_text())["openvino"]
    assert side["fp32"]["passed"] and side["fp32"]["max_abs"] < 1e-4  # OpenVINO FP32 vs PyTorch FP32
    assert side["bf16"]["passed"] if NATIVE_BF16 else side["bf16"]["measured"] is False
    _scene(tmp_path / "in" / "a.png", 100, 120, 4)
    code, run, err = _infer([str(tmp_path / "exp" / "model.onnx"), str(tmp_path / "in"), "-o", str(tmp_path / "ov"),
                             "--backend", "openvino", "--check-against", str(trained_nano), "--check-tiles", "4"],
                            capsys)
    assert code == 0, err
    assert run["check"]["passed"] and run["check"]["max_abs"] < 1e-4
    code, _, err = _infer([str(tmp_path / "exp" / "model.onnx"), str(tmp_path / "in"), "-o", str(tmp_path / "ort"),
                           "--backend", "onnxruntime"], capsys)
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "ov" / "a.mask.png")),
                          np.asarray(Image.open(tmp_path / "ort" / "a.mask.png")))


@pytest.mark.skipif(NATIVE_BF16, reason="this CPU has native BF16")
def test_bf16_is_refused_without_native_support(tmp_path: Path) -> None:
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    with pytest.raises(UsageError, match="no native BF16 .* would quietly run FP32"):
        open_model(model, "openvino", precision="bf16")
    with pytest.raises(UsageError, match="no native BF16"):  # auto takes OpenVINO for BF16, which refuses it
        open_model(model, precision="bf16")
    assert open_model(model).name == "onnxruntime"  # auto on a CPU without BF16: ONNX Runtime


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native BF16")
def test_bf16_runs_with_its_gate_where_native(tmp_path: Path) -> None:
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    with open_model(model, "openvino", precision="bf16") as backend:
        assert backend.gate is not None and backend.gate["passed"] and backend.gate["reference"] == "openvino-fp32"
        assert backend.lanes(1)[0].infer(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 1, 64, 64)
        assert backend.executed_precision() == "bf16" and backend.info.precision == "bf16"
    assert open_model(model).name == "openvino"  # auto prefers OpenVINO on such a CPU


def test_bf16_gate_reads_the_sidecar_and_refuses_a_failed_one() -> None:
    measured: list[bool] = []

    def measure() -> dict:
        measured.append(True)
        return {"passed": True, "failures": [], "reference": "openvino-fp32"}

    failed = {"openvino": {"bf16": {"passed": False, "failures": ["mask IoU 0.98 < 0.995"],
                                    "reference": "pytorch-fp32"}}}
    with pytest.raises(UsageError, match=r"BF16 failed its accuracy gate \(mask IoU 0.98 < 0.995, against pytorch"):
        bf16_gate(Path("m.onnx"), failed, measure)
    assert bf16_gate(Path("m.onnx"), failed, measure, allow_failed=True)["passed"] is False  # the benchmark
    assert not measured  # a recorded gate is not measured again
    unmeasured = {"openvino": {"bf16": {"measured": False, "why": "no native BF16"}}}
    assert bf16_gate(Path("m.onnx"), unmeasured, measure)["passed"] and measured == [True]


def test_bad_requests(tmp_path: Path) -> None:
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    with pytest.raises(UsageError, match="--device TPU"):
        open_model(model, "openvino", device="TPU")
    with pytest.raises(UsageError, match="fp32 or bf16"):
        open_model(model, "openvino", precision="fp16")
    with pytest.raises(UsageError, match="ONNX Runtime runs the precision of the model file"):
        open_model(model, "onnxruntime", precision="bf16")
    with pytest.raises(UsageError, match="takes 64px tiles but 32 was asked for"):
        open_model(model, "openvino", tile=32)
