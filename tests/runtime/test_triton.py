"""Triton: the model repository ``sam2ms triton`` writes (parsed with tritonclient's own
``model_config_pb2``), and ``sam2ms-infer --triton`` against a real server started here
(nvidia-pytriton's bundled tritonserver in its own venv, ``make triton-venv``, through
tools/triton_server.py), whose masks must equal ONNX Runtime's byte for byte over HTTP and gRPC.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sam2ms.artifacts import read_sidecar, sidecar_path, write_sidecar
from sam2ms.data.synth import render_road_scene

from conftest import has_module, run_cli
from pixelwise import pixelwise_onnx

ROOT = Path(__file__).resolve().parents[2]
TILE = 64

needs_client = pytest.mark.skipif(not has_module("tritonclient"), reason="the [triton] extra is not installed")


def _artifact(path: Path, tile: int = TILE, **fields: object) -> Path:
    """The pixelwise ONNX with a sidecar as an export writes it (tensors listed)."""
    pixelwise_onnx(path, tile, sidecar=False)
    write_sidecar(
        path,
        {
            "kind": "onnx",
            "model": "pixelwise",
            "tile": tile,
            "precision": "fp32",
            "input_format": "float32",
            "inputs": [{"name": "image", "shape": ["N", 3, tile, tile], "dtype": "float32"}],
            "outputs": [{"name": "logits", "shape": ["N", 1, tile, tile], "dtype": "float32"}],
            **fields,
        },
    )
    return path


# --- the repository -------------------------------------------------------------------------------


def _config(folder: Path) -> Any:
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def _names(config: Any) -> tuple[list[str], list[str]]:
    """The tensors' data types and the instance groups' kinds, by their enum names."""
    from tritonclient.grpc import model_config_pb2 as pb

    types = [pb.DataType.Name(t.data_type) for t in (*config.input, *config.output)]
    return types, [pb.ModelInstanceGroup.Kind.Name(g.kind) for g in config.instance_group]


@needs_client
def test_an_onnx_repository_parses_with_tritons_own_protobuf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _artifact(tmp_path / "model.onnx")
    code, out, err = run_cli(["triton", str(model), "-o", str(tmp_path / "repo"), "--instances", "2", "--json"], capsys)
    assert code == 0, err
    folder = tmp_path / "repo" / "sam2ms"
    config = _config(folder)
    assert config.name == "sam2ms" and config.platform == "onnxruntime_onnx" and config.max_batch_size == 8
    (inp,), (outp,) = config.input, config.output
    assert (inp.name, list(inp.dims)) == ("image", [3, TILE, TILE])
    assert (outp.name, list(outp.dims)) == ("logits", [1, TILE, TILE])
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]  # the export's profile 1:4:8
    assert _names(config) == (["TYPE_FP32", "TYPE_FP32"], ["KIND_GPU"]) and config.instance_group[0].count == 2
    (trt,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert trt.name == "tensorrt" and trt.parameters["precision_mode"] == "FP32"
    assert config.parameters["sam2ms_sha256"].string_value == read_sidecar(model)["sha256"]
    served = folder / "1" / "model.onnx"
    assert served.read_bytes() == model.read_bytes() and read_sidecar(served)["tile"] == TILE  # still binds
    assert '"platform": "onnxruntime_onnx"' in out
    assert not list((tmp_path / "repo").glob(".*"))  # no staging folder left
    code, _, err = run_cli(["triton", str(model), "-o", str(tmp_path / "repo")], capsys)
    assert code == 2 and "exists" in err  # never overwritten
    older = pixelwise_onnx(tmp_path / "older.onnx", TILE)  # a sidecar from before tensors were recorded
    code, _, err = run_cli(["triton", str(older), "-o", str(tmp_path / "repo"), "--name", "older"], capsys)
    assert code == 0, err
    again = _config(tmp_path / "repo" / "older")
    assert (again.input, again.output) == (config.input, config.output)  # as every export names them


@needs_client
def test_a_plan_and_an_fp16_onnx_take_their_own_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "engine.plan"
    plan.write_bytes(b"a serialised engine")
    write_sidecar(
        plan,
        {
            "kind": "tensorrt-plan",
            "tile": TILE,
            "precision": "fp16",
            "input_format": "uint8",
            "inputs": [{"name": "image", "shape": ["N", TILE, TILE, 3], "dtype": "uint8"}],
            "outputs": [{"name": "logits", "shape": ["N", 1, TILE, TILE], "dtype": "float32"}],
            "builder": "tensorrt",
            "batch_profile": [1, 2, 4],
        },
    )
    code, _, err = run_cli(["triton", str(plan), "-o", str(tmp_path / "repo"), "--name", "roads"], capsys)
    assert code == 0, err
    config = _config(tmp_path / "repo" / "roads")
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 4
    assert list(config.dynamic_batching.preferred_batch_size) == [2, 4]
    assert list(config.input[0].dims) == [TILE, TILE, 3] and _names(config)[0] == ["TYPE_UINT8", "TYPE_FP32"]
    assert not config.optimization.execution_accelerators.gpu_execution_accelerator  # a plan is TensorRT already
    assert (tmp_path / "repo" / "roads" / "1" / "model.plan").is_file()
    fp16 = _artifact(tmp_path / "model.fp16.onnx", precision="fp16", parity={"passed": True, "failures": []})
    code, _, err = run_cli(["triton", str(fp16), "-o", str(tmp_path / "repo"), "--name", "half"], capsys)
    assert code == 0, err
    (trt,) = _config(tmp_path / "repo" / "half").optimization.execution_accelerators.gpu_execution_accelerator
    assert trt.parameters["precision_mode"] == "FP16"  # its FP16 parity passed
    cpu = _artifact(tmp_path / "cpu.onnx")
    code, _, err = run_cli(["triton", str(cpu), "-o", str(tmp_path / "repo"), "--name", "c", "--device", "cpu"], capsys)
    config = _config(tmp_path / "repo" / "c")
    assert code == 0 and _names(config)[1] == ["KIND_CPU"] and not config.HasField("optimization")


@pytest.mark.parametrize(
    ("make", "args", "said"),
    [
        ("plan", ["--max-batch", "16"], "built for batches 1 to 4"),
        ("plan", ["--device", "cpu"], "runs on a GPU only"),
        ("failed", [], "failed the parity check"),
        ("onnx", ["--name", "../up"], "--name '../up'"),
        ("onnx", ["--instances", "0"], "--instances 0"),
        ("bare", [], "no sidecar"),
        ("deepness", [], "is the model for QGIS' Deepness plugin"),  # the runtime's own judgement
    ],
)
def test_refusals(make: str, args: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if make == "plan":
        model = tmp_path / "engine.plan"
        model.write_bytes(b"plan")
        write_sidecar(
            model,
            {
                "kind": "tensorrt-plan",
                "tile": TILE,
                "precision": "fp32",
                "builder": "tensorrt",
                "batch_profile": [1, 2, 4],
            },
        )
    elif make == "failed":
        model = _artifact(tmp_path / "model.onnx", parity={"passed": False, "failures": ["max abs 0.1 > 1e-4"]})
    elif make == "bare":
        model = pixelwise_onnx(tmp_path / "model.onnx", TILE, sidecar=False)
    elif make == "deepness":
        model = _artifact(tmp_path / "model.deepness.onnx", deepness={"metadata": {}})
    else:
        model = _artifact(tmp_path / "model.onnx")
    code, _, err = run_cli(["triton", str(model), "-o", str(tmp_path / "repo"), *args], capsys)
    assert code == 2 and said in err and "Traceback" not in err, err
    assert not (tmp_path / "repo" / "sam2ms").exists()


# --- the backend, against a real server -----------------------------------------------------------


@dataclass(frozen=True)
class Served:
    model: Path  # the artifact it serves (with its sidecar), as "px"
    http: str
    grpc: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Pytriton's tritonserver serving the pixelwise ONNX as ``px``, over HTTP and gRPC."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from triton_server import TRITON_PYTHON, serve
    finally:
        sys.path.remove(str(ROOT / "tools"))
    if not TRITON_PYTHON.is_file():
        pytest.skip(f"no Triton server venv at {TRITON_PYTHON}: make triton-venv")
    if not has_module("tritonclient"):
        pytest.skip("the [triton] extra is not installed")
    model = _artifact(tmp_path_factory.mktemp("triton") / "px.onnx")
    with serve(model, "px") as server:
        yield Served(model, server.http, server.grpc)


@pytest.fixture()
def scenes(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    for i, (h, w) in enumerate([(150, 230), (40, 50)]):  # several windows, and one smaller than a tile
        Image.fromarray(render_road_scene(h, w, np.random.default_rng(i))[0]).save(src / f"s{i}.png")
    return src


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_masks_equal_onnxruntimes_byte_for_byte(
    protocol: str, served: Served, scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    common = [str(served.model), str(scenes), "--probabilities", "--quiet", "--batch", "3"]
    code, _, err = run_cli(["infer", *common, "-o", str(tmp_path / "local"), "--backend", "onnxruntime"], capsys)
    assert code == 0, err
    url = getattr(served, protocol)
    args = ["infer", *common, "-o", str(tmp_path / "remote"), "--triton", url, "--model", "px", "--json"]
    code, out, err = run_cli([*args, "--streams", "2"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["model"]["backend"] == "triton" and summary["model"]["served_model"] == "px"
    assert summary["model"]["server"] == url and summary["model"]["bound_by_sha256"] is False  # pytriton's config
    local, remote = _outputs(tmp_path / "local"), _outputs(tmp_path / "remote")
    assert len(local) == 4 and local == remote  # masks and probability maps
    code, out, err = run_cli([*args, "--resume"], capsys)
    assert code == 0 and json.loads(out)["skipped_existing"] == 2  # resume works the same


@pytest.mark.skipif(not has_module("rasterio"), reason="needs [geo]")
def test_a_cog_from_the_server_equals_the_local_one(
    served: Served, scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [str(served.model), str(scenes), "--format", "tif", "--quiet"]
    assert run_cli(["infer", *common, "-o", str(tmp_path / "local"), "--backend", "onnxruntime"], capsys)[0] == 0
    remote = ["infer", *common, "-o", str(tmp_path / "remote"), "--triton", served.grpc, "--model", "px"]
    code, _, err = run_cli(remote, capsys)
    assert code == 0, err
    assert _outputs(tmp_path / "local") == _outputs(tmp_path / "remote")


def test_a_server_model_that_is_not_the_artifact_is_refused(
    served: Served, scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "o")
    remote = ["--triton", served.http, "--model", "px"]
    other = _artifact(tmp_path / "other.onnx", tile=32)  # another tile: the served px does not match it
    code, _, err = run_cli(["infer", str(other), str(scenes), "-o", out, *remote], capsys)
    assert code == 2 and "input image FP32 [-1, 3, 64, 64], but other.onnx's sidecar says" in err
    for args, said in (
        (["--triton", served.http, "--model", "nope"], "no ready model 'nope'"),
        (["--triton", f"http://127.0.0.1:{_closed_port()}", "--model", "px"], "is the server running there?"),
        (["--triton", "ftp://127.0.0.1:1"], "--triton ftp://127.0.0.1:1: use http://HOST[:PORT]"),
        (["--model", "px"], "--model px: "),  # not read without --triton: refused, not dropped
        (["--triton", served.http, "--backend", "openvino"], "cannot run"),
        ([*remote, "--batch", "9"], "--batch 9: the model's batch profile allows at most 8"),  # the server's max
    ):
        code, _, err = run_cli(["infer", str(served.model), str(scenes), "-o", out, *args], capsys)
        assert code == 2 and said in err and "Traceback" not in err, (args, err)
    bare = pixelwise_onnx(tmp_path / "bare.onnx", TILE, sidecar=False)
    code, _, err = run_cli(
        ["infer", str(bare), str(scenes), "-o", out, "--triton", served.http, "--unverified"], capsys
    )
    assert code == 2 and "has no sidecar" in err and not sidecar_path(bare).exists()
    assert not Path(out).exists()


@pytest.mark.slow
@pytest.mark.skipif(not has_module("ray"), reason="needs [ray]")
def test_ray_actors_run_against_the_server_too(served: Served, scenes: Path, tmp_path: Path) -> None:
    """Each Ray actor opens its own client: the outputs equal the local run's (own process: own Ray)."""
    infer = str(Path(sys.executable).with_name("sam2ms-infer"))
    common = [str(served.model), str(scenes), "--quiet"]
    subprocess.run([infer, *common, "-o", str(tmp_path / "local"), "--backend", "onnxruntime"], check=True)
    remote = [infer, *common, "-o", str(tmp_path / "ray"), "--triton", served.grpc, "--model", "px", "--ray", "local"]
    done = subprocess.run(remote, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _outputs(tmp_path / "local") == _outputs(tmp_path / "ray")
