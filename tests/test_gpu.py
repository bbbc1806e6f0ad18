"""GPU tests: the cuda-python memory/stream/event/graph layer, the PyTorch backend's CUDA-stream
lanes and the TensorRT backend on a real GPU. Skipped, with the reason, wherever no NVIDIA GPU (or
no TensorRT) is visible — CI machines have none. ``make gpu-check`` runs them on a lent GPU.
"""

from pathlib import Path

import numpy as np
import pytest

from sam2ms.runtime import cuda

from conftest import has_module, run_cli

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _need_gpu() -> None:
    count, why = cuda.device_status()
    if count == 0:
        pytest.skip(f"no usable NVIDIA GPU: {why}")


def _tensorrt_for_this_gpu() -> tuple[str, list[str]]:
    """(builder, export args) for whichever TensorRT is importable; skips with the reason where
    tensorrt_rtx cannot target this GPU (it has no sm90: no H100/H200).
    """
    if has_module("tensorrt"):
        return "tensorrt", []
    if not has_module("tensorrt_rtx"):
        pytest.skip("no TensorRT library importable (tensorrt or tensorrt_rtx)")
    import tensorrt_rtx as trt

    props = cuda.check(cuda.cudart().cudaGetDeviceProperties(0), "cudaGetDeviceProperties")
    target = f"sm{props.major}{props.minor}"
    if not hasattr(trt.ComputeCapability, target.upper()):
        pytest.skip(f"tensorrt_rtx {trt.__version__} cannot build for this GPU ({target}); it targets RTX parts")
    return "tensorrt_rtx", ["--target", target]


@pytest.mark.parametrize("streams", [1, 3])
def test_pinned_round_trip_through_streams(streams: int) -> None:
    rng = np.random.default_rng(streams)
    lanes = []
    for _ in range(streams):
        src, dst = cuda.PinnedBuffer((4, 3, 64, 64), np.float32), cuda.PinnedBuffer((4, 3, 64, 64), np.float32)
        src.array[:] = rng.standard_normal(src.array.shape)
        lanes.append((cuda.Stream(), src, dst, cuda.DeviceBuffer(src.nbytes)))
    for stream, src, dst, dev in lanes:
        start, end = cuda.Event(), cuda.Event()
        start.record(stream)
        cuda.copy_to_device(dev, src, src.nbytes, stream)
        cuda.copy_to_host(dst, dev, src.nbytes, stream)
        end.record(stream)
        stream.synchronize()
        assert start.elapsed_ms(end) >= 0
        for event in (start, end):
            event.close()
    for stream, src, dst, dev in lanes:
        stream.synchronize()
        assert np.array_equal(src.array, dst.array)
        for res in (src, dst, dev, stream):
            res.close()
    assert "NVIDIA" in cuda.device_name() or cuda.device_name()


def test_graph_replays_copies() -> None:
    stream = cuda.Stream()
    src, dst = cuda.PinnedBuffer((1024,), np.float32), cuda.PinnedBuffer((1024,), np.float32)
    dev = cuda.DeviceBuffer(src.nbytes)

    def enqueue() -> None:
        cuda.copy_to_device(dev, src, src.nbytes, stream)
        cuda.copy_to_host(dst, dev, src.nbytes, stream)

    graph = cuda.Graph(stream, enqueue)
    for value in (1.0, 2.0):
        src.array[:] = value
        graph.launch(stream)
        stream.synchronize()
        assert (dst.array == value).all()
    for res in (graph, src, dst, dev, stream):
        res.close()


def test_torch_lanes_run_on_their_own_streams(
    trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The K-stream pipeline with the PyTorch backend: the same masks with 1 and 3 streams."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    from PIL import Image

    from sam2ms.data.synth import render_road_scene

    img, _ = render_road_scene(150, 200, np.random.default_rng(0))
    (tmp_path / "in").mkdir()
    Image.fromarray(img).save(tmp_path / "in" / "s.png")
    masks = []
    for streams in (1, 3):
        out = tmp_path / f"s{streams}"
        code, _, err = run_cli(
            [
                "infer",
                str(trained_nano),
                str(tmp_path / "in"),
                "-o",
                str(out),
                "--tile",
                "64",
                "--batch",
                "2",
                "--streams",
                str(streams),
                "--quiet",
            ],
            capsys,
        )
        assert code == 0, err
        masks.append(np.asarray(Image.open(out / "s.mask.png")) > 0)
    assert (masks[0] == masks[1]).mean() > 0.999


def test_tensorrt_plan_matches_onnxruntime(
    trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from sam2ms.data.synth import render_road_scene

    builder, extra = _tensorrt_for_this_gpu()
    code, _, err = run_cli(
        [
            "export",
            "--ckpt",
            str(trained_nano),
            "--fp16",
            "--tile",
            "64",
            "--batch",
            "1:2:4",
            "--builder",
            builder,
            *extra,
            "-o",
            str(tmp_path / "exp"),
        ],
        capsys,
    )
    assert code == 0, err
    img, _ = render_road_scene(150, 200, np.random.default_rng(0))
    (tmp_path / "in").mkdir()
    Image.fromarray(img).save(tmp_path / "in" / "s.png")
    for model, out, flags in (
        ("engine.plan", "trt", ["--streams", "2"]),
        ("engine.plan", "graph", ["--cuda-graph"]),
        ("model.onnx", "ort", []),
    ):
        code, _, err = run_cli(
            [
                "infer",
                str(tmp_path / "exp" / model),
                str(tmp_path / "in"),
                "-o",
                str(tmp_path / out),
                "--batch",
                "4",
                "--quiet",
                *flags,
            ],
            capsys,
        )
        assert code == 0, err
    ref = np.asarray(Image.open(tmp_path / "ort" / "s.mask.png")) > 0
    for out in ("trt", "graph"):
        a = np.asarray(Image.open(tmp_path / out / "s.mask.png")) > 0
        assert (a & ref).sum() / max((a | ref).sum(), 1) >= 0.995, out


def test_bench_reference_and_plan_rows_on_cuda(trained_nano: Path, tmp_path: Path) -> None:
    """The reference rows on a GPU: autocast variants, the H2D/compute/D2H split, device memory,
    the device's own name, and PyTorch's multi-stream rows.
    """
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    from sam2ms.bench.options import BenchOptions
    from sam2ms.bench.runner import run_bench

    report = run_bench(
        BenchOptions(
            models=[trained_nano],
            batches=[1, 2],
            streams=[1, 2],
            iterations=3,
            warmup=1,
            torch_variants=["fp32", "fp16", "bf16"],
            accuracy_tiles=2,
        )
    )
    rows = {(r["subject"], r["batch"], r["streams"]): r for r in report["rows"]}
    assert {s for s, _, _ in rows} == {"pytorch eager fp32", "pytorch eager fp16", "pytorch eager bf16"}
    assert ("pytorch eager fp32", 2, 2) in rows  # CUDA lanes: one stream each
    for r in rows.values():
        assert set(r["split_ms"]) == {"h2d", "compute", "d2h"} and r["split_ms"]["compute"] > 0
        assert r["memory_mb"]["device_peak"] > 0 and r["device"] == torch.cuda.get_device_name()
        assert r["accuracy"]["mask_iou"] > 0.9  # autocast agrees with FP32 on the masks


def test_torch_cuda_graph_lanes_match_eager(trained_nano: Path) -> None:
    """BF16 replayed from CUDA graphs (issue 26): two lanes capturing and replaying from their own
    threads give eager BF16's logits, and masks within the BF16 gate of FP32.
    """
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    from concurrent.futures import ThreadPoolExecutor

    from sam2ms.runtime.backends import BackendOptions, open_model

    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8) for n in (4, 4, 3, 4, 1, 4)]
    with (
        open_model(trained_nano, "torch", BackendOptions(precision="fp32")) as fp32,
        open_model(trained_nano, "torch", BackendOptions(precision="bf16")) as eager,
        open_model(trained_nano, "torch", BackendOptions(precision="bf16", cuda_graph=True)) as captured,
    ):
        lanes = captured.lanes(2)
        with ThreadPoolExecutor(2) as pool:
            outs = list(pool.map(lambda ib: lanes[ib[0] % 2].infer(ib[1]), enumerate(batches)))
        for batch, out in zip(batches, outs):
            want, ref = eager.lanes(1)[0].infer(batch), fp32.lanes(1)[0].infer(batch)
            np.testing.assert_allclose(out, want, atol=0.05)
            a, b = out > 0, ref > 0
            assert (a & b).sum() / max((a | b).sum(), 1) >= 0.995
        assert captured.describe()["captured_batches"] == [4]
