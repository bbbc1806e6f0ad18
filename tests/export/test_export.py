"""sam2ms-export: ONNX FP32/FP16 with parity, sidecars, real TensorRT-RTX plans, and every error."""

import json
from pathlib import Path

import onnx
import pytest
import torch

from sam2ms.models import create_model
from sam2ms.models.checkpoint import save_checkpoint

from conftest import has_module, run_cli

needs_rtx = pytest.mark.skipif(
    not has_module("tensorrt_rtx"), reason="tensorrt_rtx not installed (pip install 'sam2ms[rtx]')"
)


def op_input_dtypes(model: onnx.ModelProto) -> dict[str, set[str]]:
    """For each operator type, the element types of its first inputs across the graph
    (after shape inference): how the FP16 test verifies what runs in which precision.
    """
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    out: dict[str, set[str]] = {}
    for node in inferred.graph.node:
        if node.input and node.input[0] in types:
            out.setdefault(node.op_type, set()).add(onnx.TensorProto.DataType.Name(types[node.input[0]]))
    return out


@pytest.fixture(scope="module")
def nano_export(trained_nano: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("export") / "nano"
    from sam2ms.export.pipeline import ExportOptions, run_export

    summary = run_export(ExportOptions(ckpt=trained_nano, out=out, fp16=True, tile=64, onnx_only=True))
    return out, summary


def test_onnx_files_and_parity(nano_export: tuple[Path, dict]) -> None:
    out, summary = nano_export
    assert summary["passed"]
    fp32, fp16 = (a["parity"] for a in summary["artifacts"])
    assert fp32["max_abs"] <= 1e-4 and fp32["mask_iou"] >= 0.999
    assert fp16["mask_iou"] >= 0.995
    model = onnx.load(str(out / "model.onnx"))
    onnx.checker.check_model(model)
    (inp,), (outp,) = model.graph.input, model.graph.output
    assert inp.name == "image" and outp.name == "logits"
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1:] == [64, 64, 3]  # dynamic batch, fixed tile, RGB bytes
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert any(o.domain in ("", "ai.onnx") and o.version >= 17 for o in model.opset_import)


def test_onnx_runs_any_batch_and_normalises_in_the_graph(nano_export: tuple[Path, dict], trained_nano: Path) -> None:
    import numpy as np
    import onnxruntime as ort

    from sam2ms.preprocess import normalize

    out, _ = nano_export
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    model = create_model(None, checkpoint=trained_nano).eval()
    x = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    with torch.no_grad():
        ref = model(torch.from_numpy(normalize(x))).numpy()  # the host's normalisation, in numpy
    assert np.abs(sess.run(None, {"image": x})[0] - ref).max() < 1e-4


def test_fp16_graph_keeps_fragile_ops_in_fp32(nano_export: tuple[Path, dict]) -> None:
    out, _ = nano_export
    half = onnx.load(str(out / "model.fp16.onnx"))
    types = op_input_dtypes(half)
    assert types["LayerNormalization"] == {"FLOAT"}
    assert types["Softmax"] == {"FLOAT"}
    assert "FLOAT16" in types["Conv"] and "FLOAT16" in types["MatMul"]
    assert half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert half.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert (out / "model.fp16.onnx").stat().st_size < 0.6 * (out / "model.onnx").stat().st_size


def test_sidecars(nano_export: tuple[Path, dict], trained_nano: Path) -> None:
    from sam2ms.artifacts import read_sidecar
    from sam2ms.digests import sha256_file

    out, _ = nano_export
    side = read_sidecar(out / "model.fp16.onnx")
    assert side["precision"] == "fp16" and side["model"] == "sam2ms_nano" and side["tile"] == 64
    assert side["sha256"] == sha256_file(out / "model.fp16.onnx")
    assert side["checkpoint"]["sha256"] == sha256_file(trained_nano)
    assert side["input_format"] == "uint8" and side["inputs"][0]["shape"] == ["N", 64, 64, 3]
    assert side["inputs"][0]["dtype"] == "uint8" and side["normalization"]["applied_by"] == "the graph"
    assert side["normalization"]["mean"] == [0.485, 0.456, 0.406]
    assert side["parity"]["passed"] and "LayerNormalization" in side["kept_fp32_ops"]
    assert read_sidecar(out / "model.onnx")["opset"] >= 17


@pytest.mark.slow
def test_hiera_t_export_parity_with_float_input(tmp_path: Path) -> None:
    """--input float32: the host normalises, the graph takes N x 3 x T x T (and is checked the same)."""
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "t.pt", create_model("sam2ms_hiera_t"), image_size=64, epoch=0, step=0)
    from sam2ms.artifacts import read_sidecar
    from sam2ms.export.pipeline import ExportOptions, run_export

    summary = run_export(
        ExportOptions(ckpt=ckpt, out=tmp_path / "out", tile=64, onnx_only=True, check_tiles=1, input_format="float32")
    )
    parity = summary["artifacts"][0]["parity"]
    assert parity["passed"] and parity["max_abs"] <= 1e-4
    side = read_sidecar(tmp_path / "out" / "model.onnx")
    assert side["input_format"] == "float32" and side["inputs"][0]["shape"] == ["N", 3, 64, 64]
    assert (
        onnx.load(str(tmp_path / "out" / "model.onnx")).graph.input[0].type.tensor_type.elem_type
        == onnx.TensorProto.FLOAT
    )


@pytest.mark.slow
@needs_rtx
def test_real_plans_with_tensorrt_rtx(trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sizes = {}
    for fp16 in (False, True):
        out = tmp_path / ("fp16" if fp16 else "fp32")
        args = [
            "export",
            "--ckpt",
            str(trained_nano),
            "--tile",
            "64",
            "--batch",
            "1:2:4",
            "--target",
            "sm86,sm89",
            "--builder",
            "tensorrt_rtx",
            "--check-tiles",
            "1",
            "-o",
            str(out),
            "--json",
        ]
        code, stdout, err = run_cli(args + (["--fp16"] if fp16 else []), capsys)
        assert code == 0, err
        plan = out / "engine.plan"
        side = json.loads((out / "engine.plan.json").read_text())
        assert side["builder"] == "tensorrt_rtx" and side["targets"] == ["sm86", "sm89"]
        assert side["precision"] == ("fp16" if fp16 else "fp32") and side["batch_profile"] == [1, 2, 4]
        assert side["profiles"] == 1  # shared by every runtime stream (TensorRT 10+, TensorRT-RTX)
        assert side["input_format"] == "uint8"  # the plan takes RGB bytes
        assert side["onnx"]["file"] == ("model.fp16.onnx" if fp16 else "model.onnx")
        assert json.loads(stdout)["artifacts"][-1]["artifact"] == str(plan)
        sizes[fp16] = plan.stat().st_size
    assert sizes[False] > 100_000
    assert sizes[True] < 0.8 * sizes[False]  # precision really came from the FP16 graph


# --- errors -----------------------------------------------------------------------------------


def _err(args: list[str], capsys: pytest.CaptureFixture[str], code: int = 2) -> str:
    got, _, err = run_cli(["export", *args], capsys)
    assert got == code, err
    assert "Traceback" not in err
    return err


def test_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "not found" in _err(["--ckpt", str(tmp_path / "no.pt"), "-o", str(tmp_path / "o")], capsys)


def test_non_sam2ms_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.save({"fc.weight": torch.zeros(1)}, tmp_path / "r.pth")
    assert "not a SAM2MS checkpoint" in _err(["--ckpt", str(tmp_path / "r.pth"), "-o", str(tmp_path / "o")], capsys)


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--tile", "100"], "multiple of 32"),
        (["--builder", "onnx2trt"], "--builder onnx2trt"),
        (["--batch", "4:2:8"], "min:opt:max"),
        (["--batch", "1:4"], "min:opt:max"),
        (["--batch", "0:1:2"], "min:opt:max"),
        (["--workspace", "lots"], "--workspace"),
        (["--opset", "16"], "'--opset'"),
    ],
)
def test_bad_options(
    trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], msg: str
) -> None:
    err = _err(["--ckpt", str(trained_nano), "-o", str(tmp_path / "o"), *args], capsys)
    assert msg in err
    assert not (tmp_path / "o" / "model.onnx").exists()


@needs_rtx
def test_unknown_target(trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(
        ["--ckpt", str(trained_nano), "-o", str(tmp_path), "--builder", "tensorrt_rtx", "--target", "sm99"], capsys
    )
    assert "sm99" in err and "sm89" in err


def test_unwritable_output(trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "cannot write" in _err(["--ckpt", str(trained_nano), "-o", str(blocker / "sub")], capsys)


def test_a_refused_export_leaves_no_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    foreign = tmp_path / "foreign.pt"
    foreign.write_bytes(b"not a checkpoint")
    assert "not a readable PyTorch checkpoint" in _err(
        ["--ckpt", str(foreign), "-o", str(tmp_path / "out"), "--onnx-only"], capsys
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(has_module("tensorrt"), reason="tensorrt is installed here")
def test_missing_tensorrt_keeps_onnx(trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(
        ["--ckpt", str(trained_nano), "-o", str(tmp_path), "--tile", "64", "--builder", "tensorrt", "--no-check"],
        capsys,
    )
    assert "pip install 'sam2ms[trt]'" in err
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model.onnx.json").is_file()
    assert not list(tmp_path.glob(".*tmp"))


def test_failed_parity_exits_3(
    trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sam2ms import accuracy

    monkeypatch.setitem(accuracy.PARITY_THRESHOLDS, "fp32", accuracy.Thresholds(max_abs=0.0, min_mask_iou=1.0))
    err = _err(["--ckpt", str(trained_nano), "-o", str(tmp_path), "--tile", "64", "--onnx-only"], capsys, code=3)
    assert "model.onnx (fp32)" in err and "max abs diff" in err
    side = json.loads((tmp_path / "model.onnx.json").read_text())
    assert side["parity"]["passed"] is False


def test_torchscript_exporter_serves_opset_17(trained_nano: Path, tmp_path: Path) -> None:
    import numpy as np

    from sam2ms.accuracy import parity_tiles
    from sam2ms.export.onnx_export import export_onnx, opset_of
    from sam2ms.export.parity import torch_probabilities
    from sam2ms.runtime.probabilities import onnxruntime_probabilities

    model = create_model(None, checkpoint=trained_nano).eval()
    result = export_onnx(model, tmp_path / "m17.onnx", 64, opset=17, exporter="torchscript")
    assert opset_of(onnx.load(str(result.path))) == 17
    tiles = parity_tiles(64, 1)
    assert np.abs(onnxruntime_probabilities(result.path, tiles) - torch_probabilities(model, tiles)).max() < 1e-4


@needs_rtx
def test_parser_errors_are_reported_by_node(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    from sam2ms.errors import Sam2msError
    from sam2ms.export.tensorrt_build import build_plan

    node = helper.make_node("NoSuchOp", ["image"], ["logits"], name="mystery_node", domain="com.example")
    inp = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1, 32, 32])
    graph = helper.make_graph([node], "g", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.example", 1)])
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(Sam2msError) as err:
        build_plan(
            tmp_path / "bad.onnx",
            tmp_path / "bad.plan",
            builder="tensorrt_rtx",
            shapes=[[1, 3, 32, 32]] * 3,
            workspace=1 << 28,
            targets=["sm89"],
        )
    assert "mystery_node" in str(err.value) and "NoSuchOp" in str(err.value)
    assert not (tmp_path / "bad.plan").exists()


def _matmul_onnx(path: Path) -> Path:
    """Three nodes around one FP32 GEMM: what tensorrt_rtx cannot compile for Turing."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((32, 32), np.float32), "w")
    nodes = [
        helper.make_node("Relu", ["image"], ["a"]),
        helper.make_node("MatMul", ["a", "w"], ["b"]),
        helper.make_node("Relu", ["b"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 32, 32])],
        initializer=[w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


@needs_rtx
def test_tensorrt_rtx_has_no_fp32_gemm_for_turing(tmp_path: Path) -> None:
    """The library's own behaviour that the default targets follow: reproduced with the raw builder."""
    import tensorrt_rtx as trt

    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    assert trt.OnnxParser(network, logger).parse_from_file(str(_matmul_onnx(tmp_path / "mm.onnx")))
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("image", (1, 32, 32), (1, 32, 32), (2, 32, 32))
    config.add_optimization_profile(profile)
    config.num_compute_capabilities = 1
    config.set_compute_capability(trt.ComputeCapability.SM75, 0)
    assert builder.build_serialized_network(network, config) is None
    config.set_compute_capability(trt.ComputeCapability.SM89, 0)
    assert builder.build_serialized_network(network, config) is not None


@pytest.mark.slow
@needs_rtx
def test_targets_follow_the_plan_precision(
    trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tensorrt_rtx as trt

    from sam2ms.export.tensorrt_build import default_targets, resolve_targets

    assert "sm75" not in default_targets("fp32") and "sm75" not in default_targets("int8")
    assert default_targets("fp16")[0] == "sm75"
    assert len(resolve_targets(trt, "tensorrt_rtx", None, "fp32")) == 3
    # Refused before minutes of export, for FP32 (the default precision) and INT8, not for FP16.
    err = _err(
        ["--ckpt", str(trained_nano), "-o", str(tmp_path / "a"), "--builder", "tensorrt_rtx", "--target", "sm75,sm89"],
        capsys,
    )
    assert "--target sm75: no FP32 plan" in err and "--fp16" in err
    assert not (tmp_path / "a" / "model.onnx").exists()
    code, _, err = run_cli(
        [
            "export",
            "--ckpt",
            str(trained_nano),
            "--tile",
            "64",
            "--fp16",
            "--batch",
            "1:1:2",
            "--builder",
            "tensorrt_rtx",
            "--target",
            "sm75",
            "--check-tiles",
            "1",
            "-o",
            str(tmp_path / "b"),
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads((tmp_path / "b" / "engine.plan.json").read_text())["targets"] == ["sm75"]
