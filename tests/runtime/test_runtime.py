"""sam2ms-infer: backends, tiled pipeline, outputs, resume, bad input, sidecar checks."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2ms.data.synth import render_road_scene

from conftest import has_module, run_cli
from pixelwise import expected_probability, pixelwise_onnx


def _scene(path: Path, h: int, w: int, seed: int) -> np.ndarray:
    img, _ = render_road_scene(h, w, np.random.default_rng(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return img


@pytest.fixture()
def scenes(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    _scene(src / "big.png", 150, 230, 1)
    _scene(src / "sub" / "small.png", 40, 50, 2)  # smaller than a tile: padded and cropped back
    _scene(src / "tile.png", 64, 64, 3)
    return src


def _infer(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    code, out, err = run_cli(["infer", *args, "--json", "--quiet"], capsys)
    return code, (json.loads(out) if out.strip().startswith("{") else {}), err


def test_pipeline_geometry_is_exact(tmp_path: Path, scenes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    code, summary, err = _infer(
        [
            str(model),
            str(scenes),
            "-o",
            str(tmp_path / "out"),
            "--overlap",
            "16",
            "--batch",
            "3",
            "--streams",
            "2",
            "--probabilities",
        ],
        capsys,
    )
    assert code == 0, err
    assert summary["files"] == 3 and summary["failed"] == 0
    assert summary["tiles"] == 3 * 5 + 1 + 1  # 150x230 at stride 48, last snapped: 3 rows x 5 columns
    for rel in ("big", "sub/small", "tile"):
        image = np.asarray(Image.open(scenes / f"{rel}.png"))
        prob = np.asarray(Image.open(tmp_path / "out" / f"{rel}.prob.png")).astype(np.float64) / 255
        mask = np.asarray(Image.open(tmp_path / "out" / f"{rel}.mask.png"))
        want = expected_probability(image)
        assert prob.shape == mask.shape == image.shape[:2]
        assert np.abs(prob - want).max() <= 0.5 / 255 + 1e-6  # exact up to uint8 quantisation
        assert set(np.unique(mask)) <= {0, 255}
        assert ((mask == 255) == (want >= 0.5)).mean() > 0.999
    for key in ("tiles_per_s", "megapixels_per_s", "stage_seconds", "outputs", "failures"):
        assert key in summary


def test_runtime_imports_no_torch(tmp_path: Path, scenes: Path) -> None:
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    code = f"""
import sys
from sam2ms.runtime.backends import BackendOptions, open_model
from sam2ms.runtime.pipeline import InferOptions, run_inference
from pathlib import Path
import sam2ms.runtime.command, sam2ms.runtime.scenes, sam2ms.runtime.tiling, sam2ms.runtime.cuda
import sam2ms.runtime.check
s = run_inference(open_model({str(model)!r}), InferOptions(Path({str(scenes)!r}), Path({str(tmp_path / "o")!r})))
assert s["files"] == 3, s
# no torch, and nothing of the export stage or the synthetic-data generator either
bad = [m for m in ("torch", "torchvision", "sam2", "sam2ms.export", "sam2ms.data.synth") if m in sys.modules]
assert not bad, bad
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_bad_file_is_skipped_and_exit_1(tmp_path: Path, scenes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (scenes / "broken.png").write_bytes(b"not a png")
    Image.new("CMYK", (64, 64)).save(scenes / "cmyk.jpg")  # no band-by-band reading of CMYK
    code, summary, err = _infer(
        [str(pixelwise_onnx(tmp_path / "px.onnx", 64)), str(scenes), "-o", str(tmp_path / "out")], capsys
    )
    assert code == 1
    assert summary["files"] == 3 and summary["failed"] == 2
    assert {Path(f["file"]).name for f in summary["failures"]} == {"broken.png", "cmyk.jpg"}
    assert "Traceback" not in err
    assert (tmp_path / "out" / "big.mask.png").is_file()


@pytest.mark.skipif(not has_module("rasterio"), reason="rasterio not installed (pip install 'sam2ms[geo]')")
def test_kill_9_then_resume_leaves_no_temp_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real ``kill -9`` while a COG is being staged; ``--resume`` completes with the outputs of
    an undisturbed run and removes the hidden files the killed run left.
    """
    import os
    import signal
    import time

    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    src = tmp_path / "in"
    for i in range(6):
        _scene(src / f"s{i}.png", 1100, 1100, i)
    args = [model, str(src), "--format", "tif", "--probabilities", "--batch", "8"]
    assert _infer([*args, "-o", str(tmp_path / "full")], capsys)[0] == 0
    part = tmp_path / "part"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sam2ms.cli", "infer", *args, "-o", str(part), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list(part.glob(".*.stage.tif")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = list(part.glob(".*"))
    assert left, "the run finished before it could be killed; give it more work"
    code, summary, err = _infer([*args, "-o", str(part), "--resume"], capsys)
    assert code == 0, err
    assert summary["removed_temp_files"] >= 1 and not list(part.glob(".*"))
    assert summary["files"] + summary["skipped_existing"] == 6
    import rasterio

    for f in sorted((tmp_path / "full").glob("*.tif")):
        with rasterio.open(f) as a, rasterio.open(part / f.name) as b:
            assert np.array_equal(a.read(), b.read()), f.name


def test_resume_after_killed_run_gives_identical_outputs(
    tmp_path: Path, scenes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    full, part = tmp_path / "full", tmp_path / "part"
    assert _infer([model, str(scenes), "-o", str(full), "--probabilities"], capsys)[0] == 0
    assert _infer([model, str(scenes), "-o", str(part), "--probabilities"], capsys)[0] == 0
    # A killed run: one scene never written, another with only its mask, plus a stray temp file.
    (part / "big.mask.png").unlink()
    (part / "big.prob.png").unlink()
    (part / "tile.prob.png").unlink()
    (part / ".tile.prob.png.abc.tmp").write_bytes(b"partial")
    (part / ".big.mask.png.k3j_x9.tmp").write_bytes(b"partial")
    code, summary, _ = _infer([model, str(scenes), "-o", str(part), "--probabilities", "--resume"], capsys)
    assert code == 0 and summary["skipped_existing"] == 1 and summary["files"] == 2
    assert summary["removed_temp_files"] == 2 and not list(part.rglob(".*.tmp"))
    for f in full.rglob("*.png"):
        assert f.read_bytes() == (part / f.relative_to(full)).read_bytes(), f


def test_onnx_export_runs_with_sidecar_and_check_against(
    trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2ms.export.pipeline import ExportOptions, run_export

    run_export(ExportOptions(ckpt=trained_nano, out=tmp_path / "exp", tile=64, onnx_only=True, check_tiles=1))
    src = tmp_path / "in"
    _scene(src / "a.png", 100, 120, 4)
    code, summary, err = _infer(
        [
            str(tmp_path / "exp" / "model.onnx"),
            str(src),
            "-o",
            str(tmp_path / "out"),
            "--overlap",
            "16",
            "--check-against",
            str(trained_nano),
            "--check-tiles",
            "4",
        ],
        capsys,
    )
    assert code == 0, err
    check = summary["check"]
    assert check["passed"] and check["tiles"] == 4 and check["max_abs"] < 1e-4
    assert check["f1"] > 0.99 and set(check["seconds_per_tile"]) == {"engine", "pytorch"}
    if has_module("networkx"):  # the road graphs of the engine's masks against PyTorch's
        assert check["apls"] > 0.95 and 0 <= check["apls_min"] <= check["apls"] and check["topo_f1"] > 0.9
    # The torch backend runs the checkpoint itself.
    code, summary, err = _infer([str(trained_nano), str(src), "-o", str(tmp_path / "ref"), "--tile", "64"], capsys)
    assert code == 0, err and summary["model"]["backend"] == "torch"


def test_check_against_other_weights_fails_with_3(
    trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    _scene(src / "a.png", 64, 64, 4)
    code, summary, err = _infer(
        [
            str(pixelwise_onnx(tmp_path / "px.onnx", 64)),
            str(src),
            "-o",
            str(tmp_path / "out"),
            "--check-against",
            str(trained_nano),
        ],
        capsys,
    )
    assert code == 3 and not summary["check"]["passed"]
    assert "check against PyTorch failed" in err


@pytest.mark.skipif(not has_module("rasterio"), reason="rasterio not installed (pip install 'sam2ms[geo]')")
def test_geotiff_keeps_crs_and_transform(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import rasterio
    from rasterio.transform import from_origin

    img, _ = render_road_scene(130, 170, np.random.default_rng(9))
    src = tmp_path / "in" / "scene.tif"
    src.parent.mkdir()
    transform = from_origin(500000.0, 4200000.0, 0.5, 0.5)
    with rasterio.open(
        src, "w", driver="GTiff", height=130, width=170, count=3, dtype="uint8", crs="EPSG:32633", transform=transform
    ) as ds:
        ds.write(np.moveaxis(img, -1, 0))
    code, _summary, err = _infer(
        [
            str(pixelwise_onnx(tmp_path / "px.onnx", 64)),
            str(src.parent),
            "-o",
            str(tmp_path / "out"),
            "--format",
            "tif",
            "--probabilities",
            "--overlap",
            "16",
        ],
        capsys,
    )
    assert code == 0, err
    with rasterio.open(tmp_path / "out" / "scene.mask.tif") as out:
        assert out.crs.to_epsg() == 32633 and out.transform == transform
        assert (out.height, out.width) == (130, 170)
        mask = out.read(1)
    assert ((mask == 255) == (expected_probability(img) >= 0.5)).mean() > 0.999
    with rasterio.open(tmp_path / "out" / "scene.prob.tif") as out:
        prob = out.read(1).astype(np.float64) / 255
    assert np.abs(prob - expected_probability(img)).max() <= 0.5 / 255 + 1e-6


# --- refusals ---------------------------------------------------------------------------------


def _refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code, _, err = _infer(args, capsys)
    assert code == 2, err
    assert "Traceback" not in err
    return err


def test_sidecar_mismatches(tmp_path: Path, scenes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sam2ms.artifacts import write_sidecar

    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    write_sidecar(
        model,
        {
            "tile": 64,
            "precision": "fp32",
            "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        },
    )
    out = str(tmp_path / "o")
    assert "built for 64px tiles" in _refused([str(model), str(scenes), "-o", out, "--tile", "128"], capsys)
    write_sidecar(
        model, {"tile": 64, "precision": "fp32", "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
    )
    assert "normalisation" in _refused([str(model), str(scenes), "-o", out], capsys)
    write_sidecar(
        model, {"tile": 64, "precision": "fp32", "parity": {"passed": False, "failures": ["mask IoU 0.9 < 0.999"]}}
    )
    assert "failed the parity check" in _refused([str(model), str(scenes), "-o", out], capsys)


def test_other_refusals(tmp_path: Path, scenes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sam2ms.artifacts import write_sidecar

    out = str(tmp_path / "o")
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    (tmp_path / "m.bin").write_bytes(b"x")
    assert "unknown model kind" in _refused([str(tmp_path / "m.bin"), str(scenes), "-o", out], capsys)
    assert "not found" in _refused([str(tmp_path / "none.onnx"), str(scenes), "-o", out], capsys)
    assert "cannot run" in _refused([model, str(scenes), "-o", out, "--backend", "tensorrt"], capsys)
    assert "input not found" in _refused([model, str(tmp_path / "nothing"), "-o", out], capsys)
    assert "--overlap" in _refused([model, str(scenes), "-o", out, "--overlap", "64"], capsys)
    assert "--format" in _refused([model, str(scenes), "-o", out, "--format", "jpg"], capsys)
    assert "--providers" in _refused([model, str(scenes), "-o", out, "--providers", "rocm"], capsys)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "cannot write" in _refused([model, str(scenes), "-o", str(blocker / "sub")], capsys)
    Image.open(scenes / "tile.png").save(scenes / "tile.jpg")
    assert "would write the same outputs" in _refused([model, str(scenes), "-o", out], capsys)
    (scenes / "tile.jpg").unlink()
    (tmp_path / "plan.plan").write_bytes(b"x")
    assert "no sidecar" in _refused([str(tmp_path / "plan.plan"), str(scenes), "-o", out], capsys)
    (tmp_path / "bad.onnx").write_bytes(b"x")  # not an ONNX: refused by whichever backend opens it
    write_sidecar(tmp_path / "bad.onnx", {"tile": 64, "precision": "fp32"})
    bad = [str(tmp_path / "bad.onnx"), str(scenes), "-o", out, "--backend"]
    err = _refused([*bad, "onnxruntime"], capsys)
    assert "ONNX Runtime cannot load it (" in err and "Protobuf parsing failed" in err  # the library's words
    if has_module("openvino"):
        assert "OpenVINO cannot read it (Unable to read the model" in _refused([*bad, "openvino"], capsys)


#: Each flag with a value out of its range, and what the refusal must say. The CLI checks no range
#: itself: these come from InferOptions / BackendOptions / RayOptions.validate.
OUT_OF_RANGE = [
    (["--batch", "0"], "--batch 0: use 1 to 4096"),
    (["--batch", "4097"], "--batch 4097: use 1 to 4096"),
    (["--streams", "65"], "--streams 65: use 1 to 64"),
    (["--workers", "0"], "--workers 0: use 1 to 256"),
    (["--threshold", "1"], "--threshold 1.0: must be between 0 and 1"),
    (["--threshold", "-0.5"], "--threshold -0.5: must be between 0 and 1"),
    (["--overlap", "-1"], "--overlap -1: must be at least 0"),
    (["--overlap", "64"], "--overlap 64: must be in [0, tile=64)"),
    (["--threads", "0"], "--threads 0: use 1 to 1024"),
    (["--tile", "16"], "--tile 16: use 32 to"),
    (["--check-tiles", "0"], "--check-tiles 0: must be at least 1"),
    (["--max-pixels", "0"], "--max-pixels 0: must be at least 1"),
    (["--ray", "local", "--block", "128"], "--block 128: use at least 256"),
    (["--ray", "local", "--ray-cpus-per-actor", "-1"], "--ray-cpus-per-actor -1.0: must be at least 0"),
]


@pytest.mark.parametrize(("flags", "said"), OUT_OF_RANGE, ids=[" ".join(f) for f, _ in OUT_OF_RANGE])
def test_out_of_range_flags_are_refused_before_anything_runs(
    flags: list[str], said: str, tmp_path: Path, scenes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2ms.artifacts import write_sidecar

    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    write_sidecar(model, {"tile": 64, "precision": "fp32"})
    if "--ray" in flags and not has_module("ray"):
        pytest.skip("ray is not installed ([ray])")
    assert said in _refused([str(model), str(scenes), "-o", str(tmp_path / "o"), *flags], capsys)
    assert not (tmp_path / "o").exists()


def test_options_hold_their_ranges_without_the_cli(tmp_path: Path) -> None:
    """A run built in Python gets the checks the CLI gets: validate() holds every range."""
    from sam2ms.errors import UsageError
    from sam2ms.runtime.backends import BackendOptions, ModelInfo
    from sam2ms.runtime.pipeline import InferOptions

    info = ModelInfo("m.onnx", "onnx", 64, "fp32")
    base = InferOptions(tmp_path / "in", tmp_path / "out")
    assert base.validate(info).overlap == 8  # the model's default resolved, nothing else changed
    for bad in ({"batch": 0}, {"streams": 99}, {"workers": 300}, {"threshold": 0.0}, {"check_tiles": 0}):
        with pytest.raises(UsageError, match="--" + next(iter(bad)).replace("_", "-")):
            InferOptions(tmp_path / "in", tmp_path / "out", **bad).validate(info)
    assert BackendOptions(threads=4, tile=64).validate() == BackendOptions(threads=4, tile=64)
    for refused, said in (
        (BackendOptions(precision="fp8"), "--precision fp8"),
        (BackendOptions(threads=2000), "--threads 2000"),
        (BackendOptions(tile=1 << 20), "--tile"),
        (BackendOptions(compile="fastest"), "torch.compile mode fastest"),
        (BackendOptions(cuda_graph=True, compile="reduce-overhead"), "use one or the other"),
    ):
        with pytest.raises(UsageError, match=said):
            refused.validate()


@pytest.mark.slow
@pytest.mark.skipif(not has_module("tensorrt_rtx") and not has_module("tensorrt"), reason="no TensorRT installed")
def test_plan_without_gpu_is_a_clear_error(
    trained_nano: Path, tmp_path: Path, scenes: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2ms.export.pipeline import ExportOptions, run_export
    from sam2ms.runtime.cuda import device_status

    if device_status()[0]:
        pytest.skip("a GPU is visible: the plan would run")
    run_export(
        ExportOptions(ckpt=trained_nano, out=tmp_path / "exp", tile=64, batch="1:2:4", targets=["sm89"], check=False)
    )
    err = _refused([str(tmp_path / "exp" / "engine.plan"), str(scenes), "-o", str(tmp_path / "o")], capsys)
    assert "needs an NVIDIA GPU, but CUDA says:" in err
    assert "cudaError" in err or "cuda-python" in err  # the CUDA error by name, or the missing library


class _RedIsRoad:
    """A lane whose logits say 'road' where the red byte is >= 128; ``drop`` turns red == 128 (1/128
    of the road pixels) into background: an engine that agrees with the reference at mask IoU 0.992.
    """

    last_split_ms = None

    def __init__(self, drop: bool) -> None:
        self.drop = drop

    def infer(self, batch: np.ndarray) -> np.ndarray:
        red = batch[..., 0].astype(np.float32)
        logits = (red - 127.5) / 8
        if self.drop:
            logits[red == 128] = -1.0
        return logits[:, None]


def test_check_against_judges_int8_by_its_targets(tmp_path: Path) -> None:
    """A model agreeing with PyTorch at mask IoU 0.992 passes as INT8 (calibration's targets: IoU >= 0.98,
    F1 drop <= 0.5 points) and fails as FP16 (0.995): the check uses the artifact's own criteria.
    """
    from sam2ms.runtime.backends import Backend, ModelInfo
    from sam2ms.runtime.check import check_against

    class Fixed(Backend):
        name = "fixed"

        def __init__(self, precision: str, drop: bool) -> None:
            self.info = ModelInfo("m", "onnx", 64, precision, input_format="uint8")
            self.lane = _RedIsRoad(drop)

        def lanes(self, count: int) -> list:
            return [self.lane] * count

    Image.fromarray(np.random.default_rng(4).integers(0, 256, (256, 256, 3), np.uint8)).save(tmp_path / "s.png")
    reports = {
        p: check_against(
            Fixed(p, drop=True), Fixed("fp32", drop=False), tmp_path / "s.png", overlap=0, batch=4, limit=16
        ).to_json()
        for p in ("int8", "fp16")
    }
    assert 0.99 < reports["int8"]["mask_iou"] == reports["fp16"]["mask_iou"] < 0.995
    assert reports["int8"]["passed"] and reports["int8"]["targets"]["min_mask_iou"] == 0.98
    assert not reports["fp16"]["passed"] and reports["fp16"]["failures"]
    assert reports["int8"]["reference"] == reports["fp16"]["reference"] == "pytorch-fp32"


def test_progress_counts_windows(tmp_path: Path, scenes: Path) -> None:
    """One large scene is not one step: the bar's total grows by each scene's windows as it opens,
    and every window done (empty, failed or inferred) advances it, so it ends full.
    """
    from sam2ms.runtime.backends import open_model
    from sam2ms.runtime.pipeline import InferOptions, run_inference

    (scenes / "broken.png").write_bytes(b"not a png")  # fails at open: never in the total
    totals: list[int] = []
    done: list[int] = []
    with open_model(pixelwise_onnx(tmp_path / "px.onnx", 64)) as engine:
        summary = run_inference(
            engine,
            InferOptions(scenes, tmp_path / "out", overlap=16, batch=3),
            progress=done.append,
            on_start=totals.append,
        )
    assert summary["tiles"] == 3 * 5 + 1 + 1 and summary["failed"] == 1
    assert totals == sorted(totals) and totals[-1] == sum(done) == summary["tiles"] + summary["empty_windows"]
    assert len(done) > 3  # batches, not files


def test_an_option_the_backend_does_not_read_is_refused(tmp_path: Path) -> None:
    """Every backend reads one BackendOptions; what it would ignore is refused, naming the flag."""
    from sam2ms.artifacts import write_sidecar
    from sam2ms.errors import UsageError
    from sam2ms.runtime.backends import BackendOptions, open_model

    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    write_sidecar(model, {"tile": 64, "precision": "fp32"})
    with open_model(model, "onnxruntime", BackendOptions(providers=("cpu",), threads=1)) as engine:
        assert engine.name == "onnxruntime"
    for refused, said in (
        (BackendOptions(device="GPU"), "--device GPU: onnxruntime does not take it"),
        (BackendOptions(channels_last=True), "channels-last: onnxruntime does not take it"),
        (BackendOptions(compile="default"), "torch.compile default: onnxruntime does not take it"),
        (BackendOptions(precision="bf16"), "ONNX Runtime runs the precision of the model file"),
        (BackendOptions(cuda_graph=True), "--cuda-graph: TensorRT plans and checkpoints"),
    ):
        with pytest.raises(UsageError, match=said):
            open_model(model, "onnxruntime", refused)
