"""The demo end to end, at a tiny size: synth -> train -> eval -> overlay -> export."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2ms.demo import run_demo

from conftest import has_module


@pytest.mark.slow
def test_tiny_demo(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, count=8, size=64, epochs=1, progress=False)
    assert json.loads((tmp_path / "summary.json").read_text())["test"] == summary["test"]
    assert summary["data"]["train"] + summary["data"]["test"] == 8
    overlay = np.asarray(Image.open(summary["overlay"]))
    shown = min(3, summary["data"]["test"])
    assert overlay.shape == (shown * 64, 4 * 64, 3)  # up to 3 test scenes x (image, label, prob, errors)
    arts = {Path(a["artifact"]).name: a for a in summary["export"]["artifacts"]}
    assert arts["model.onnx"]["parity"]["passed"] and arts["model.fp16.onnx"]["parity"]["passed"]
    int8 = arts["model.int8.onnx"]
    assert int8["accuracy_vs_fp32"]["tiles"] == 8 and "layers_in_float" in int8
    assert ("engine.plan" in arts) != ("plan" in summary["export"])  # a plan, or the reason why not
    table = {r["artifact"]: r for r in summary["table"]}
    assert {"model.onnx", "model.fp16.onnx", "pytorch eager fp32"} <= set(table)
    assert table["pytorch eager fp32"]["x_pytorch"] == 1.0 and table["model.onnx"]["mask_iou_vs_pytorch"] == 1.0
    assert table["model.onnx"]["x_best_pytorch"] is not None
    if has_module("openvino"):  # the OpenVINO rows join the table, sized by the file they run
        assert table["model.onnx (openvino)"]["megabytes"] == table["model.onnx"]["megabytes"]
    assert json.loads(Path(summary["bench"]["report"]).read_text())["schema"] == "sam2ms-bench/1"
    scene = summary["scene"]
    assert scene["files"] == 1 and scene["failed"] == 0 and scene["check"]["passed"]
    assert np.asarray(Image.open(scene["overlay"])).shape == (3 * 64, 4 * 4 * 64, 3)
    # the scene's road graphs: APLS beside F1, and both graphs drawn side by side over the scene
    assert 0 <= scene["accuracy_vs_label"]["apls"] <= 1 and 0 <= scene["accuracy_vs_label"]["topo_f1"] <= 1
    assert np.asarray(Image.open(scene["graph_picture"])).shape == (3 * 64, 2 * 4 * 64, 3)


def test_demo_reports_every_failed_check() -> None:
    """The export's failure, the scene check and each refused bench row are listed, and the closing
    table marks the refused rows as bench.md does.
    """
    from sam2ms.demo import demo_failures, summary_table

    def row(subject: str, ok: bool | None) -> dict:
        return {
            "subject": subject,
            "batch": 4,
            "precision": "bf16",
            "backend": "openvino",
            "checks_passed": ok,
            "accuracy": {"mask_iou": 0.997},
            "throughput": {"tiles_per_s": 10.0},
            "vs_best_pytorch": None,
            "vs_reference": None,
        }

    summary = {
        "export": {"artifacts": [], "failure": "check failed: model.onnx on OpenVINO bf16: mask IoU"},
        "scene": {"check": {"passed": False, "failures": ["mask IoU 0.9 < 0.999"]}},
        "bench": {
            "rows": [row("model.onnx (openvino bf16)", False), row("model.onnx", True), row("pytorch eager fp32", None)]
        },
    }
    failures = demo_failures(summary)
    assert failures == [
        "check failed: model.onnx on OpenVINO bf16: mask IoU",
        "scene check against PyTorch: mask IoU 0.9 < 0.999",
        "model.onnx (openvino bf16) at batch 4: its checks failed, the runtime refuses it",
    ]
    assert [r["artifact"] for r in summary_table(summary)] == [
        "model.onnx (openvino bf16) (checks FAILED)",
        "model.onnx",
        "pytorch eager fp32",
    ]
