"""GPU tests: the cuda-python memory/stream layer and the TensorRT backend. Skipped, with the
reason, wherever no NVIDIA GPU (or no TensorRT) is visible — CI machines have none."""

from pathlib import Path

import numpy as np
import pytest

from sam2ms.runtime import cuda

from conftest import has_module, run_cli

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _need_gpu() -> None:
    if cuda.device_count() == 0:
        pytest.skip("no NVIDIA GPU visible (needs a driver and cuda-python: pip install 'sam2ms[gpu]')")


@pytest.mark.parametrize("streams", [1, 3])
def test_pinned_round_trip_through_streams(streams: int) -> None:
    rng = np.random.default_rng(streams)
    lanes = []
    for _ in range(streams):
        src, dst = cuda.PinnedBuffer((4, 3, 64, 64), np.float32), cuda.PinnedBuffer((4, 3, 64, 64), np.float32)
        src.array[:] = rng.standard_normal(src.array.shape)
        lanes.append((cuda.Stream(), src, dst, cuda.DeviceBuffer(src.nbytes)))
    for stream, src, dst, dev in lanes:
        cuda.copy_to_device(dev, src, src.nbytes, stream)
        cuda.copy_to_host(dst, dev, src.nbytes, stream)
    for stream, src, dst, dev in lanes:
        stream.synchronize()
        assert np.array_equal(src.array, dst.array)
        for res in (src, dst, dev, stream):
            res.close()


@pytest.mark.skipif(not has_module("tensorrt"), reason="the full tensorrt wheel is not installed here")
def test_tensorrt_plan_matches_onnxruntime(trained_nano: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from sam2ms.data.synth import render_road_scene

    code, _, err = run_cli(["export", "--ckpt", str(trained_nano), "--fp16", "--tile", "64", "--batch", "1:2:4",
                            "--builder", "tensorrt", "-o", str(tmp_path / "exp")], capsys)
    assert code == 0, err
    img, _ = render_road_scene(150, 200, np.random.default_rng(0))
    (tmp_path / "in").mkdir()
    Image.fromarray(img).save(tmp_path / "in" / "s.png")
    for model, out in (("engine.plan", "trt"), ("model.onnx", "ort")):
        code, _, err = run_cli(["infer", str(tmp_path / "exp" / model), str(tmp_path / "in"), "-o",
                                str(tmp_path / out), "--batch", "4", "--streams", "2", "--quiet"], capsys)
        assert code == 0, err
    a = np.asarray(Image.open(tmp_path / "trt" / "s.mask.png")) > 0
    b = np.asarray(Image.open(tmp_path / "ort" / "s.mask.png")) > 0
    assert (a & b).sum() / max((a | b).sum(), 1) >= 0.995


def test_bench_pytorch_reference_on_cuda(trained_nano: Path, tmp_path: Path) -> None:
    """The reference rows on a GPU: autocast variants, the H2D/compute/D2H split and device memory."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    from sam2ms.bench.runner import BenchOptions, run_bench

    report = run_bench(BenchOptions(models=[trained_nano], batches=[1, 2], iterations=3, warmup=1,
                                    torch_variants=["fp32", "fp16", "bf16"], accuracy_tiles=2))
    rows = {(r["subject"], r["batch"]): r for r in report["rows"]}
    assert {s for s, _ in rows} == {"pytorch eager fp32", "pytorch eager fp16", "pytorch eager bf16"}
    for r in rows.values():
        assert set(r["split_ms"]) == {"h2d", "compute", "d2h"} and r["split_ms"]["compute"] > 0
        assert r["memory_mb"]["device_peak"] > 0 and r["device"] == torch.cuda.get_device_name()
        assert r["accuracy"]["mask_iou"] > 0.9  # autocast agrees with FP32 on the masks
