"""The TensorRT backend's own logic on the CPU, through fakes of TensorRT and cuda-python
(tests/runtime/fake_tensorrt.py): profile sharing, checked bool results, buffers and output shapes from the
context, unsupported I/O types, CUDA events and graphs, and a whole tiled run. Plus CUDA error
reporting with faked error codes. The real library runs in tests/test_gpu.py (skipped without a GPU).
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from sam2ms.artifacts import write_sidecar
from sam2ms.errors import Sam2msError, UsageError
from sam2ms.runtime.backends import BackendOptions, open_model
from sam2ms.runtime.backends.tensorrt_backend import _TrtLane

import fake_tensorrt as fake
from conftest import run_cli

pytestmark = pytest.mark.core  # runs without torch: make test-core


def _plan(tmp_path: Path, **fields: object) -> Path:
    plan = tmp_path / "engine.plan"
    plan.write_bytes(b"fake plan")
    write_sidecar(
        plan,
        {
            "kind": "tensorrt-plan",
            "tile": 32,
            "precision": "fp16",
            "input_format": "uint8",
            "builder": "tensorrt",
            **fields,
        },
    )
    return plan


@pytest.fixture()
def engine(monkeypatch: pytest.MonkeyPatch) -> fake.FakeEngine:
    e = fake.FakeEngine(tile=32, batch=(1, 2, 4))
    fake.install(monkeypatch, e)
    return e


def _tiles(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_lanes_share_one_profile_and_compute(engine: fake.FakeEngine, tmp_path: Path) -> None:
    with open_model(_plan(tmp_path)) as backend:
        assert backend.info.min_batch == 1 and backend.info.max_batch == 4 and backend.info.max_lanes is None
        lanes = backend.lanes(3)  # three streams on a one-profile plan
        assert backend.lanes(2) == lanes[:2]  # asked again: the same lanes, no new buffers
        assert [c.profile for c in engine.contexts] == [0, 0, 0]
        for i, lane in enumerate(lanes):
            x = _tiles(3, i)
            np.testing.assert_array_equal(lane.infer(x), fake.FakeContext.logits(x))
            assert lane.last_split_ms == {"h2d": 0.25, "compute": 0.25, "d2h": 0.25}
        assert backend.describe()["device"] == "Fake GPU"


def test_plans_are_read_with_host_code_forbidden(engine: fake.FakeEngine, tmp_path: Path) -> None:
    """A plan can carry host code (embedded plugins, a lean runtime) that TensorRT would load from
    temporary files: the runtime forbids both before it reads any plan.
    """
    with open_model(_plan(tmp_path)):
        assert engine.loaded_with == {"engine_host_code_allowed": False, "tempfile_control_flags": 0}


def test_buffers_follow_the_profile_and_output_shape_the_context(engine: fake.FakeEngine, tmp_path: Path) -> None:
    with open_model(_plan(tmp_path)) as backend:
        lane = backend.lanes(1)[0]
        assert isinstance(lane, _TrtLane)
        assert lane.h_in.array.shape == (4, 32, 32, 3) and lane.h_in.array.dtype == np.uint8
        assert lane.h_out.array.shape == (4, 1, 32, 32)
        out = lane.infer(_tiles(1))
        assert out.shape == (1, 1, 32, 32) and out.dtype == np.float32
        with pytest.raises(Sam2msError, match="refused input shape"):
            lane.infer(_tiles(5))  # beyond the profile: TensorRT's False is not ignored


@pytest.mark.parametrize(
    "refused,message", [("address", "the address of 'image'"), ("profile", "optimisation profile 0")]
)
def test_false_results_are_errors(
    engine: fake.FakeEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused: str, message: str
) -> None:
    monkeypatch.setattr(fake.FakeContext, "refuse", {refused})
    with open_model(_plan(tmp_path)) as backend, pytest.raises(Sam2msError, match=f"TensorRT refused {message}"):
        backend.lanes(1)


def test_bf16_output_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake.install(monkeypatch, fake.FakeEngine(32, (1, 1, 2), output_dtype=fake.DataType.BF16))
    with pytest.raises(UsageError, match="'logits' is BF16"):
        open_model(_plan(tmp_path))


def test_plan_input_must_match_the_sidecar(engine: fake.FakeEngine, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="takes uint8 input but its sidecar says float32"):
        open_model(_plan(tmp_path, input_format="float32"))


def test_cuda_graph_is_captured_once_per_batch_size(engine: fake.FakeEngine, tmp_path: Path) -> None:
    fake.Graph.captured = 0
    with open_model(_plan(tmp_path), "auto", BackendOptions(cuda_graph=True)) as backend:
        lane = backend.lanes(1)[0]
        for n in (2, 2, 3, 2):
            x = _tiles(n, n)
            np.testing.assert_array_equal(lane.infer(x), fake.FakeContext.logits(x))
    assert fake.Graph.captured == 2


def test_tensorrt_rtx_runtime_config_and_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Eager kernels when asked (bench, --check-against), the library's own CUDA graphs, and the
    runtime cache kept beside the plan for the next process.
    """
    from sam2ms.runtime.backends.tensorrt_backend import runtime_cache_path

    engine = fake.RtxEngine(32, (1, 2, 4))
    fake.install(monkeypatch, engine)
    plan = _plan(tmp_path, builder="tensorrt_rtx")
    with open_model(plan) as backend:
        backend.lanes(2)
        assert engine.config.dynamic_shapes_kernel_specialization_strategy == "LAZY"  # the library's default
        assert all(c.runtime_config is engine.config for c in engine.contexts)
    cache = runtime_cache_path(plan)
    assert cache.read_bytes() == b"kernels for the fake GPU"
    fake.Graph.captured = 0
    with open_model(plan, "auto", BackendOptions(eager_kernels=True, cuda_graph=True)) as backend:
        assert engine.config.dynamic_shapes_kernel_specialization_strategy == "EAGER"
        assert engine.config.cuda_graph_strategy == "WHOLE_GRAPH_CAPTURE"
        assert engine.config.cache is not None
        assert engine.config.cache.loaded == b"kernels for the fake GPU"  # the second process reuses it
        backend.lanes(1)[0].infer(_tiles(2))
    assert fake.Graph.captured == 0  # TensorRT-RTX captures by itself


def test_cuda_graph_only_for_plans(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(UsageError, match="--cuda-graph"):
        open_model(tmp_path / "m.onnx", "auto", BackendOptions(cuda_graph=True, unverified=True))


def test_plan_from_a_failed_onnx_is_refused(tmp_path: Path) -> None:
    failed = {"passed": False, "failures": ["mask IoU 0.9 < 0.995"]}
    with pytest.raises(UsageError, match=r"built from an ONNX that failed its parity check.*mask IoU 0.9"):
        open_model(_plan(tmp_path, parity_of_source_onnx=failed))


def test_whole_tiled_run_through_the_tensorrt_lanes(
    engine: fake.FakeEngine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2ms.data.synth import render_road_scene

    image, _ = render_road_scene(70, 90, np.random.default_rng(3))
    (tmp_path / "in").mkdir()
    Image.fromarray(image).save(tmp_path / "in" / "s.png")
    code, out, err = run_cli(
        [
            "infer",
            str(_plan(tmp_path)),
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--batch",
            "4",
            "--streams",
            "2",
            "--overlap",
            "8",
            "--probabilities",
            "--json",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["input_bytes_per_tile"] == 32 * 32 * 3 and summary["model"]["device"] == "Fake GPU"
    prob = np.asarray(Image.open(tmp_path / "out" / "s.prob.png")).astype(np.float64) / 255
    want = 1 / (1 + np.exp(-fake.FakeContext.logits(image[None])[0, 0]))
    assert np.abs(prob - want).max() <= 0.5 / 255 + 1e-6  # per-pixel model: exact up to uint8 rounding


class _Err(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInsufficientDriver = 35
    cudaErrorNoDevice = 100


@pytest.mark.parametrize(
    "code,expected",
    [
        (_Err.cudaErrorInsufficientDriver, "cudaErrorInsufficientDriver: "),
        (_Err.cudaErrorNoDevice, "no CUDA device visible (cudaErrorNoDevice)"),
    ],
)
def test_cuda_errors_are_named(monkeypatch: pytest.MonkeyPatch, code: _Err, expected: str) -> None:
    from sam2ms.runtime import cuda

    rt = SimpleNamespace(
        cudaError_t=_Err,
        cudaGetDeviceCount=lambda: (code, 0),
        cudaGetErrorName=lambda err: (_Err.cudaSuccess, err.name.encode()),
    )
    monkeypatch.setattr(cuda, "cudart", lambda: rt)
    count, why = cuda.device_status()
    assert count == 0 and why is not None and why.startswith(expected)
    with pytest.raises(UsageError, match="needs an NVIDIA GPU, but CUDA says: " + expected.split(":")[0][:20]):
        cuda.require_device("this")
    if code == _Err.cudaErrorInsufficientDriver:
        assert "no CUDA device visible" not in why  # a driver problem is never called "no GPU"
