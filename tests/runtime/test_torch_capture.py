"""The PyTorch backend's fast path, on the CPU: weights cast once, and the CUDA-graph capture
logic (one graph per lane and batch size, padded tails, outputs copied out before the next
replay) against a fake graph API that replays by calling the function again. The real capture
runs in ``make gpu-check`` (tests/test_gpu.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sam2ms.errors import UsageError  # noqa: E402
from sam2ms.runtime.backends import BackendOptions, open_model, torch_backend  # noqa: E402
from sam2ms.runtime.backends.torch_capture import CapturedForward, graph_api  # noqa: E402

from conftest import run_cli  # noqa: E402


class FakeGraph:
    """A captured graph whose replay runs ``fn`` again and writes into the captured output, as a
    real replay overwrites the same device memory.
    """

    def __init__(self, fn: Callable[[Any], Any], static_in: Any, static_out: Any) -> None:
        self.fn, self.static_in, self.static_out, self.replays = fn, static_in, static_out, 0

    def replay(self) -> None:
        self.static_out.copy_(self.fn(self.static_in))
        self.replays += 1


class FakeGraphs:
    """The :class:`GraphAPI` of a CPU test: records every pool and capture."""

    def __init__(self) -> None:
        self.pools: list[object] = []
        self.captures: list[tuple[tuple[int, ...], object]] = []  # (input shape, pool)
        self.warmups = 0

    def pool(self) -> object:
        self.pools.append(object())
        return self.pools[-1]

    def capture(self, fn: Callable[[Any], Any], static_in: Any, pool: Any, stream: Any) -> tuple[FakeGraph, Any]:
        fn(static_in)  # the warm-up
        self.warmups += 1
        self.captures.append((tuple(static_in.shape), pool))
        static_out = fn(static_in)
        return FakeGraph(fn, static_in, static_out), static_out


def _fn(x: Any) -> Any:
    """Stands in for a model: each row depends only on itself (like inference in eval mode)."""
    return x.to(torch.float32).mul(0.5).add(x.to(torch.float32).mean(dim=(1, 2), keepdim=True))


def _run(forward: CapturedForward, batch: np.ndarray) -> np.ndarray:
    run, n = forward.load(torch.from_numpy(batch))
    return forward.replay(run, n).clone().numpy()  # the lane's copy-out


def test_one_graph_per_lane_and_batch_size_and_padded_tails() -> None:
    api, lock, rng = FakeGraphs(), threading.Lock(), np.random.default_rng(0)
    lanes = [CapturedForward(_fn, api, torch.device("cpu"), None, lock) for _ in range(2)]
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    for size in (4, 4, 3, 1, 4, 8, 2):
        for lane in lanes:
            batch = rng.integers(0, 256, (size, 6, 6, 3), dtype=np.uint8)
            out = _run(lane, batch)
            kept.append((out, _fn(torch.from_numpy(batch)).numpy()))
    for out, want in kept:  # earlier outputs are untouched by later replays
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-6)
    for lane in lanes:
        assert lane.batch_sizes == [4, 8]  # 3, 1 and 2 replayed the 4-graph, zero-padded
    assert len(api.pools) == 2 and api.warmups == 4
    assert {pool for _, pool in api.captures} == set(api.pools)
    by_pool = {pool: sorted(shape[0] for shape, p in api.captures if p is pool) for pool in api.pools}
    assert list(by_pool.values()) == [[4, 8], [4, 8]]  # a lane's graphs share its pool


def test_another_tile_size_gets_its_own_graph() -> None:
    api = FakeGraphs()
    lane = CapturedForward(_fn, api, torch.device("cpu"), None, threading.Lock())
    for shape in ((2, 8, 8, 3), (2, 4, 4, 3), (1, 8, 8, 3)):
        batch = np.full(shape, 7, np.uint8)
        np.testing.assert_allclose(_run(lane, batch), _fn(torch.from_numpy(batch)).numpy(), atol=1e-6)
    assert [shape for shape, _ in api.captures] == [(2, 8, 8, 3), (2, 4, 4, 3)]


def test_captures_from_many_threads_are_serialised() -> None:
    class SlowGraphs(FakeGraphs):
        inside = 0
        overlapped = False

        def capture(self, fn: Callable[[Any], Any], static_in: Any, pool: Any, stream: Any) -> tuple[FakeGraph, Any]:
            SlowGraphs.inside += 1
            SlowGraphs.overlapped |= SlowGraphs.inside > 1
            threading.Event().wait(0.02)
            try:
                return super().capture(fn, static_in, pool, stream)
            finally:
                SlowGraphs.inside -= 1

    api, lock = SlowGraphs(), threading.Lock()
    lanes = [CapturedForward(_fn, api, torch.device("cpu"), None, lock) for _ in range(4)]
    threads = [threading.Thread(target=_run, args=(lane, np.ones((2, 4, 4, 3), np.uint8))) for lane in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(api.captures) == 4 and not SlowGraphs.overlapped


def test_cast_weights_once_is_bit_identical_to_autocast() -> None:
    from sam2ms.models import create_model
    from sam2ms.models.byte_input import ByteInput

    torch.manual_seed(0)
    plain = ByteInput(create_model("sam2ms_nano")).eval()
    cast = ByteInput(create_model("sam2ms_nano")).eval()
    cast.load_state_dict(plain.state_dict())
    n = torch_backend.cast_weights_once(cast.model, torch.bfloat16)
    assert n > 0
    norms = [m for m in cast.modules() if isinstance(m, (torch.nn.LayerNorm, torch.nn.BatchNorm2d))]
    assert norms and all(p.dtype == torch.float32 for m in norms for p in m.parameters())
    x = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(plain(x), cast(x))


@pytest.fixture
def fake_cuda_graphs(monkeypatch: pytest.MonkeyPatch) -> FakeGraphs:
    api = FakeGraphs()
    monkeypatch.setattr(torch_backend, "graph_api", lambda device: api)
    return api


def test_captured_lane_gives_the_eager_lane_s_logits(trained_nano: Path, fake_cuda_graphs: FakeGraphs) -> None:
    rng = np.random.default_rng(2)
    batches = [rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8) for n in (2, 2, 1)]
    with (
        open_model(trained_nano, "torch", BackendOptions(precision="bf16")) as eager,
        open_model(trained_nano, "torch", BackendOptions(precision="bf16", cuda_graph=True)) as captured,
    ):
        (e_lane,), (c_lane,) = eager.lanes(1), captured.lanes(1)
        outs = [c_lane.infer(b) for b in batches]
        for batch, out in zip(batches, outs):
            want = e_lane.infer(batch)
            assert out.shape == want.shape and out.dtype == np.float32
            if len(batch) == 2:
                assert np.array_equal(out, want)  # the same shape: the same arithmetic
            else:  # the tail ran padded in the batch-2 graph
                np.testing.assert_allclose(out, want, atol=1e-3)
        assert captured.describe()["captured_batches"] == [2] and captured.describe()["cuda_graph"]
    assert [shape for shape, _ in fake_cuda_graphs.captures] == [(2, 64, 64, 3)]


def test_cuda_graph_needs_cuda(trained_nano: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="CUDA GPU"):
        graph_api(torch.device("cpu"))
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the capture would run")
    (tmp_path / "in").mkdir()
    code, _, err = run_cli(
        [
            "infer",
            str(trained_nano),
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--backend",
            "torch",
            "--cuda-graph",
            "--quiet",
        ],
        capsys,
    )
    assert code == 2 and "needs a CUDA GPU" in err


def test_cuda_graph_and_compile_are_exclusive(trained_nano: Path) -> None:
    with pytest.raises(UsageError, match="one or the other"):
        open_model(trained_nano, "torch", BackendOptions(cuda_graph=True, compile="reduce-overhead"))
    with pytest.raises(UsageError, match=r"torch.compile mode"):
        open_model(trained_nano, "torch", BackendOptions(compile="fastest"))


def test_torch_variants_parse() -> None:
    from sam2ms.bench.options import TorchVariant

    assert TorchVariant.parse("bf16+graph+cl") == TorchVariant("bf16", "graph", True)
    assert TorchVariant.parse("compile") == TorchVariant("fp32", "compile")
    assert TorchVariant.parse("fp16+reduce-overhead").backend_options(64) == BackendOptions(
        precision="fp16", tile=64, compile="reduce-overhead"
    )
    assert TorchVariant.parse("bf16+graph+cl").backend_options() == BackendOptions(
        precision="bf16", cuda_graph=True, channels_last=True
    )
    assert TorchVariant.parse("bf16+graph").label == "pytorch CUDA graph bf16"
    for bad in ("fp8", "bf16+graph+compile", "graph", "bf16+cl+graph", "bf16+"):
        with pytest.raises(UsageError, match="--torch"):
            TorchVariant.parse(bad)


def test_bench_rows_of_the_fast_path(trained_nano: Path, fake_cuda_graphs: FakeGraphs) -> None:
    """``sam2ms bench --torch fp32,bf16+graph,fp32+cl``: rows for the captured and channels-last
    variants, judged against eager FP32 (in-process, so the fake graph API is the one used).
    """
    from sam2ms.bench.options import BenchOptions
    from sam2ms.bench.runner import run_bench

    report = run_bench(
        BenchOptions(
            models=[trained_nano],
            batches=[2],
            iterations=2,
            warmup=1,
            accuracy_tiles=2,
            torch_variants=["fp32", "bf16+graph", "fp32+cl"],
            isolate=False,
        )
    )
    rows = {r["subject"]: r for r in report["rows"]}
    assert set(rows) == {"pytorch eager fp32", "pytorch CUDA graph bf16", "pytorch eager fp32 channels-last"}
    assert rows["pytorch CUDA graph bf16"]["precision"] == "bf16" and fake_cuda_graphs.captures
    for row in rows.values():
        assert row["accuracy"]["mask_iou"] >= 0.99, row["subject"]
