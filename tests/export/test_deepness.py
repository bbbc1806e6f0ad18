"""model.deepness.onnx as QGIS' Deepness plugin uses it: loaded by the plugin's own model code
(tests/third_party/deepness, unchanged), its metadata read with the plugin's names and types, and
RGBA tiles normalised as the plugin does (written out here from its contract) giving model.onnx's
probabilities.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from sam2ms.accuracy import parity_tiles
from sam2ms.artifacts import read_sidecar, sidecar_path
from sam2ms.export.deepness import LAYOUT_RESOLUTION_CM, training_resolution
from sam2ms.metrics import sigmoid

from conftest import run_cli

THIRD_PARTY = Path(__file__).parents[1] / "third_party"


@pytest.fixture(scope="module")
def exported(trained_nano: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from sam2ms.export.pipeline import ExportOptions, run_export

    out = tmp_path_factory.mktemp("deepness") / "nano"
    summary = run_export(ExportOptions(ckpt=trained_nano, out=out, tile=64, onnx_only=True, deepness=True))
    return out, summary


def _metadata(path: Path) -> dict[str, str]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


def test_the_metadata_the_plugin_reads(exported: tuple[Path, dict[str, Any]]) -> None:
    out, summary = exported
    assert summary["passed"] and [Path(a["artifact"]).name for a in summary["artifacts"]] == [
        "model.onnx",
        "model.deepness.onnx",
    ]
    meta = _metadata(out / "model.deepness.onnx")
    # each read as the plugin reads it (model_base.py): json.loads, then the type it casts to
    assert str(json.loads(meta["model_type"])).capitalize() == "Segmentor"
    assert json.loads(meta["class_names"]) == {"0": "road"}
    assert float(json.loads(meta["resolution"])) == 50.0  # the nano's "folder" data: DeepGlobe's assumed
    assert int(json.loads(meta["tile_size"])) == 64 and "tiles_size" not in meta
    assert int(json.loads(meta["tiles_overlap"])) == 12  # tile/8, in percent
    assert float(json.loads(meta["seg_thresh"])) == 0.5 and int(json.loads(meta["seg_small_segment"])) == 0
    assert [float(x) for x in json.loads(meta["standardization_mean"])] == [0.485, 0.456, 0.406]
    assert [float(x) for x in json.loads(meta["standardization_std"])] == [0.229, 0.224, 0.225]
    graph = onnx.load(str(out / "model.deepness.onnx"))
    # what the plugin's own onnxruntime (its installer: >=1.12.1,<=1.17.0) reads: IR 8, opset 17
    assert graph.ir_version <= 8 and [o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")] == [17]
    side = read_sidecar(out / "model.deepness.onnx")
    assert side["input_format"] == "float32" and side["outputs"][0]["name"] == "road_probability"
    assert side["parity"]["passed"] and side["deepness"]["vs_model_onnx"]["passed"]
    assert side["deepness"]["vs_model_onnx"]["max_abs"] <= 1e-4
    assert side["deepness"]["resolution_from"].startswith("assumed")


def test_rgba_tiles_normalised_as_the_plugin_does_give_model_onnx_probabilities(
    exported: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = exported
    rgb = parity_tiles(64, 6, seed=5)
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:3], 1), 255, np.uint8)], axis=-1)  # a QGIS layer's alpha
    meta = _metadata(out / "model.deepness.onnx")
    mean = np.array(json.loads(meta["standardization_mean"]), np.float32)
    std = np.array(json.loads(meta["standardization_std"]), np.float32)
    x = np.float32(rgba[..., :3] * 1.0 / 255.0)  # first C channels of the model's input, / 255
    x = np.transpose((x - mean) / std, (0, 3, 1, 2))  # standardised, NHWC -> NCHW
    deepness = ort.InferenceSession(str(out / "model.deepness.onnx"), providers=["CPUExecutionProvider"])
    got = deepness.run(None, {deepness.get_inputs()[0].name: x})[0]
    reference = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    want = sigmoid(reference.run(None, {"image": rgb})[0])
    assert got.shape == want.shape == (6, 1, 64, 64)
    assert np.abs(got - want).max() <= 1e-4


def test_the_plugins_own_segmentor_loads_and_runs_it(exported: tuple[Path, dict[str, Any]]) -> None:
    """The plugin's Segmentor (its code, unchanged) takes the file with no setting typed by hand."""
    out, _ = exported
    sys.path.insert(0, str(THIRD_PARTY))
    try:
        from deepness.processing.models.segmentor import Segmentor
    finally:
        sys.path.remove(str(THIRD_PARTY))
    model = Segmentor(str(out / "model.deepness.onnx"))
    assert model.get_metadata_model_type() == "Segmentor"
    assert model.get_metadata_tile_size() == 64 and model.get_metadata_tiles_overlap() == 12
    assert model.get_metadata_resolution() == 50.0 and model.get_metadata_segmentation_threshold() == 0.5
    assert model.get_metadata_segmentation_small_segment() == 0
    assert list(model.get_input_shape()[1:]) == [3, 64, 64] and model.get_model_batch_size() is None
    assert model.outputs_are_sigmoid == [True] and model.outputs_names == [["background", "road"]]
    assert model.get_number_of_output_channels() == [2]
    rgb = parity_tiles(64, 3, seed=9)
    rgba = np.concatenate([rgb, np.zeros((*rgb.shape[:3], 1), np.uint8)], axis=-1)
    (got,) = model.process(rgba)  # the plugin's preprocessing, session and postprocessing
    reference = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(got - sigmoid(reference.run(None, {"image": rgb})[0])).max() <= 1e-4


def test_the_runtime_refuses_it_with_or_without_its_sidecar(
    exported: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = exported
    from PIL import Image

    Image.fromarray(parity_tiles(64, 1)[0]).save(tmp_path / "a.png")
    args = ["infer", str(out / "model.deepness.onnx"), str(tmp_path / "a.png"), "-o", str(tmp_path / "o")]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "model for QGIS' Deepness plugin" in err and "run model.onnx" in err
    bare = tmp_path / "bare.onnx"
    bare.write_bytes((out / "model.deepness.onnx").read_bytes())  # no sidecar: the graph's output says it
    code, _, err = run_cli(
        ["infer", str(bare), str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--unverified"], capsys
    )
    assert code == 2 and "Deepness" in err and not sidecar_path(bare).exists()


def test_resolution_from_the_training_data_or_refused(
    trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert training_resolution({"train_args": {"layout": "spacenet"}}) == (30.0, "its training data's (spacenet)")
    assert training_resolution({})[0] is None and training_resolution({"train_args": {"layout": "folder"}})[0] is None
    assert LAYOUT_RESOLUTION_CM == {"deepglobe": 50.0, "spacenet": 30.0, "massachusetts": 100.0}
    args = ["export", "--ckpt", str(trained_nano), "-o", str(tmp_path / "o"), "--tile", "64", "--onnx-only"]
    code, _, err = run_cli([*args, "--resolution", "30"], capsys)
    assert code == 2 and "add --deepness" in err
    code, _, err = run_cli([*args, "--deepness", "--resolution", "0"], capsys)
    assert code == 2 and "--resolution 0.0" in err and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_resolution_flag_is_what_the_plugin_reads(
    trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    args = ["export", "--ckpt", str(trained_nano), "-o", str(out), "--tile", "64", "--onnx-only", "--no-check"]
    code, _, err = run_cli([*args, "--deepness", "--resolution", "30"], capsys)
    assert code == 0, err
    assert json.loads(_metadata(out / "model.deepness.onnx")["resolution"]) == 30.0
    assert read_sidecar(out / "model.deepness.onnx")["deepness"]["resolution_from"] == "--resolution"
