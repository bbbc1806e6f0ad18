"""The OpenVINO backend: our ONNX files on OpenVINO, its knobs, BF16's refusals and accuracy gate."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sam2ms.data.synth import render_road_scene
from sam2ms.errors import UsageError

from conftest import run_cli
from pixelwise import expected_probability, pixelwise_onnx

ov = pytest.importorskip("openvino", reason="the [openvino] extra is not installed")


def _gate(gate: Verdict | None) -> dict[str, Any]:
    """A gate that must be there, as its record (what sidecars and the summary hold)."""
    assert gate is not None
    return gate.to_json()


from sam2ms.accuracy import Verdict  # noqa: E402
from sam2ms.runtime.backends import BackendOptions, open_model  # noqa: E402
from sam2ms.runtime.backends.openvino_backend import OpenVinoBackend, accuracy_gate, native_bf16  # noqa: E402

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


def test_tiled_run_on_openvino_is_exact_with_concurrent_requests(
    tmp_path: Path, _cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    image = _scene(tmp_path / "in" / "big.png", 150, 230, 1)
    code, summary, err = _infer(
        [
            str(model),
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--backend",
            "openvino",
            "--overlap",
            "16",
            "--batch",
            "3",
            "--streams",
            "2",
            "--threads",
            "2",
            "--probabilities",
        ],
        capsys,
    )
    assert code == 0, err
    described = summary["model"]
    assert (described["backend"], described["streams"], described["threads"], described["executed_precision"]) == (
        "openvino",
        2,
        2,
        "f32",
    )
    prob = np.asarray(Image.open(tmp_path / "out" / "big.prob.png")).astype(np.float64) / 255
    assert np.abs(prob - expected_probability(image)).max() <= 0.5 / 255 + 1e-6
    assert any(_cache.iterdir())  # the compiled model was cached for the next process


def test_exported_model_agrees_with_onnxruntime_and_pytorch(
    trained_nano: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2ms.export.pipeline import ExportOptions, run_export

    summary = run_export(
        ExportOptions(ckpt=trained_nano, out=tmp_path / "exp", tile=64, onnx_only=True, check_tiles=2, openvino=True)
    )
    assert summary["passed"]
    side = json.loads((tmp_path / "exp" / "model.onnx.json").read_text())["openvino"]
    assert side["fp32"]["passed"] and side["fp32"]["max_abs"] < 1e-4  # OpenVINO FP32 vs PyTorch FP32
    assert side["bf16"]["passed"] if NATIVE_BF16 else side["bf16"]["measured"] is False
    _scene(tmp_path / "in" / "a.png", 100, 120, 4)
    code, run, err = _infer(
        [
            str(tmp_path / "exp" / "model.onnx"),
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "ov"),
            "--backend",
            "openvino",
            "--check-against",
            str(trained_nano),
            "--check-tiles",
            "4",
        ],
        capsys,
    )
    assert code == 0, err
    assert run["check"]["passed"] and run["check"]["max_abs"] < 1e-4
    code, _, err = _infer(
        [
            str(tmp_path / "exp" / "model.onnx"),
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "ort"),
            "--backend",
            "onnxruntime",
        ],
        capsys,
    )
    assert code == 0, err
    assert np.array_equal(
        np.asarray(Image.open(tmp_path / "ov" / "a.mask.png")), np.asarray(Image.open(tmp_path / "ort" / "a.mask.png"))
    )


@pytest.mark.skipif(NATIVE_BF16, reason="this CPU has native BF16")
def test_bf16_is_refused_without_native_support(tmp_path: Path) -> None:
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    with pytest.raises(UsageError, match=r"no native BF16 .* would quietly run FP32"):
        open_model(model, "openvino", BackendOptions(precision="bf16"))
    with pytest.raises(UsageError, match="no native BF16"):  # auto takes OpenVINO for BF16, which refuses it
        open_model(model, "auto", BackendOptions(precision="bf16"))


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native BF16")
def test_bf16_runs_with_its_gate_where_native(tmp_path: Path) -> None:
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    with open_model(model, "openvino", BackendOptions(precision="bf16")) as backend:
        gate = _gate(backend.accuracy_gate)
        assert gate["passed"] and gate["reference"] == "openvino-fp32 of px.onnx"
        assert backend.lanes(1)[0].infer(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 1, 64, 64)
        assert isinstance(backend, OpenVinoBackend)
        assert backend.executed_precision() == "bf16" and backend.info.precision == "bf16"


def test_bf16_plumbing_with_a_stand_in_capability(
    int8_export: Path, tmp_path: Path, _cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every BF16 path that this CPU would otherwise refuse — the export's gate, the gate read or
    measured at load, the bench row — run with OpenVINO told the CPU has BF16. OpenVINO then runs
    FP32 under the BF16 hint, so this checks the plumbing (and that the summary says what really
    ran), not BF16's numerics: test_bf16_runs_with_its_gate_where_native does that on such a CPU.
    """
    import shutil

    from sam2ms.accuracy import parity_tiles
    from sam2ms.bench.options import BenchOptions
    from sam2ms.bench.runner import run_bench
    from sam2ms.fileio import write_json
    from sam2ms.runtime.backends import openvino_backend
    from sam2ms.runtime.probabilities import onnxruntime_probabilities, openvino_checks

    monkeypatch.setattr(openvino_backend, "native_bf16", lambda core, device="CPU": True)
    onnx_path = tmp_path / "model.onnx"
    for name in ("model.onnx", "model.onnx.json"):
        shutil.copy(int8_export / name, tmp_path / name)
    tiles = parity_tiles(64, 2)
    record = openvino_checks(onnx_path, "fp32", tiles, onnxruntime_probabilities(onnx_path, tiles))  # the export's
    recorded = record["bf16"]
    assert recorded["passed"] and recorded["measured_by"] == "export"
    assert recorded["thresholds"]["decisive_margin"] == 0.05 and recorded["decisive_mask_iou"] >= 0.999  # FP16's
    sidecar = json.loads(Path(f"{onnx_path}.json").read_text())
    write_json(Path(f"{onnx_path}.json"), {**sidecar, "openvino": record})
    with open_model(onnx_path, "openvino", BackendOptions(precision="bf16")) as backend:
        backend.lanes(1)  # compiled: OpenVINO tells what it runs
        described = backend.describe()
    assert described["accuracy_gate"] == recorded and described["precision"] == "bf16"
    assert described["executed_precision"] == ("bf16" if NATIVE_BF16 else "f32")  # what OpenVINO really ran
    bare = pixelwise_onnx(tmp_path / "px.onnx", 64)  # no gate recorded in its sidecar: measured at load, cached
    with open_model(bare, "openvino", BackendOptions(precision="bf16")) as backend:
        gate = _gate(backend.accuracy_gate)
        assert gate["reference"] == "openvino-fp32 of px.onnx" and gate["passed"]
    assert len(list((_cache / "gates").glob("*.bf16.json"))) == 1
    report = run_bench(
        BenchOptions(
            models=[onnx_path],
            batches=[1],
            iterations=1,
            warmup=0,
            backend="openvino",
            openvino_precisions=["fp32", "bf16"],
            isolate=False,
            accuracy_tiles=1,
        )
    )
    rows = {r["subject"]: r for r in report["rows"]}
    assert (
        rows["model.onnx (openvino bf16)"]["precision"] == "bf16"
        and rows["model.onnx (openvino)"]["precision"] == "fp32"
    )
    assert rows["model.onnx (openvino bf16)"]["checks_passed"] is True


def test_gate_is_read_from_the_sidecar_measured_where_needed_and_refused_when_failed() -> None:
    measured: list[bool] = []

    def measure() -> Verdict:
        measured.append(True)
        return Verdict(True, figures={"reference": "openvino-fp32"})

    failed = {
        "openvino": {"bf16": {"passed": False, "failures": ["mask IoU 0.98 < 0.995"], "reference": "pytorch-fp32"}}
    }
    with pytest.raises(
        UsageError,
        match=r"BF16 on OpenVINO failed its accuracy gate \(mask IoU 0.98 < 0.995, "
        r"against pytorch-fp32\); run it with --precision fp32",
    ):
        accuracy_gate(Path("m.onnx"), failed, "fp32", "bf16", measure)
    assert _gate(accuracy_gate(Path("m.onnx"), failed, "fp32", "bf16", measure, allow_failed=True))["passed"] is False
    assert not measured  # a recorded gate is not measured again
    unmeasured = {"openvino": {"bf16": {"measured": False, "why": "no native BF16"}}}
    assert _gate(accuracy_gate(Path("m.onnx"), unmeasured, "fp32", "bf16", measure))["passed"] and measured == [True]
    assert accuracy_gate(Path("m.onnx"), {}, "fp16", "fp32", measure) is None  # FP32 on a float file: no gate
    assert _gate(accuracy_gate(Path("m.onnx"), {}, "int8", "fp32", measure))["passed"] and len(measured) == 2
    int8_failed = {
        "openvino": {"fp32": {"passed": False, "failures": ["F1 drop 2.6 points > 0.5"], "reference": "fp32 masks"}}
    }
    with pytest.raises(UsageError, match=r"INT8 on OpenVINO failed .* --backend onnxruntime"):
        accuracy_gate(Path("m.int8.onnx"), int8_failed, "int8", "fp32", measure)


@pytest.fixture(scope="module")
def int8_export(trained_nano: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64 px export folder, made once: model.onnx and model.int8.onnx calibrated through the CLI
    with --openvino (targets relaxed so that the tiny model passes).
    """
    import contextlib
    import io
    import sys

    from sam2ms import accuracy
    from sam2ms.cli import main
    from sam2ms.export.pipeline import ExportOptions, run_export

    root = tmp_path_factory.mktemp("int8-openvino")
    out = root / "deploy"
    run_export(ExportOptions(ckpt=trained_nano, out=out, tile=64, onnx_only=True, check=False))
    for i in range(3):
        _scene(root / "calib" / f"s{i}.png", 96, 96, 10 + i)
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout):
        patch.setitem(accuracy.INT8_TARGETS, "min_mask_iou", 0.0)
        patch.setitem(accuracy.INT8_TARGETS, "max_f1_drop", 1.0)
        patch.setattr(
            sys,
            "argv",
            [
                "sam2ms",
                "calibrate",
                str(out / "model.onnx"),
                "--calib-data",
                str(root / "calib"),
                "--calib-batches",
                "2",
                "--calib-batch-size",
                "2",
                "--holdout",
                "3",
                "-o",
                str(out),
                "--openvino",
                "--json",
            ],
        )
        with contextlib.suppress(SystemExit):
            main()
    assert json.loads(stdout.getvalue())["openvino"]["fp32"]["passed"]
    return out


@pytest.fixture()
def int8_deploy(int8_export: Path, tmp_path: Path) -> Path:
    """A copy of :func:`int8_export` (with its calibration folder) that a test may change."""
    import shutil

    shutil.copytree(int8_export.parent, tmp_path / "copy")
    return tmp_path / "copy" / "deploy" / "model.int8.onnx"


def test_int8_gate_recorded_by_calibration_or_measured_at_load(
    int8_deploy: Path, _cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sam2ms import accuracy
    from sam2ms.fileio import write_json

    monkeypatch.setitem(accuracy.INT8_TARGETS, "min_mask_iou", 0.0)  # the tiny model's OpenVINO INT8 passes them
    monkeypatch.setitem(accuracy.INT8_TARGETS, "max_f1_drop", 1.0)
    sidecar = json.loads(Path(f"{int8_deploy}.json").read_text())
    recorded = sidecar["openvino"]["fp32"]
    assert (recorded["tiles"], recorded["reference"], recorded["measured_by"]) == (3, "fp32 masks", "export")
    assert {"mask_iou", "f1_drop", "max_abs", "targets"} <= set(recorded)
    with open_model(int8_deploy, "openvino") as backend:  # recorded: read, not measured
        assert _gate(backend.accuracy_gate) == recorded and backend.describe()["accuracy_gate"] == recorded
    assert not (_cache / "gates").exists()

    del sidecar["openvino"]  # an INT8 file calibrated without --openvino: measured at load, once per machine
    write_json(Path(f"{int8_deploy}.json"), sidecar)
    with open_model(int8_deploy, "openvino") as backend:
        gate = _gate(backend.accuracy_gate)
    assert gate["measured_by"] == "runtime" and gate["reference"] == "openvino-fp32 of model.onnx"
    assert gate["tiles"] == 16 and gate["passed"] and len(list((_cache / "gates").iterdir())) == 1  # gate_tiles
    with open_model(int8_deploy, "openvino") as backend:
        assert _gate(backend.accuracy_gate) == gate  # from the cache
    monkeypatch.setitem(accuracy.INT8_TARGETS, "min_mask_iou", 1.01)  # other criteria: measured again, refused
    code, _, err = _infer(
        [str(int8_deploy), str(int8_deploy.parent), "-o", str(int8_deploy.parent / "m"), "--backend", "openvino"],
        capsys,
    )
    assert code == 2 and "INT8 on OpenVINO failed its accuracy gate (mask IoU to FP32" in err
    assert "Traceback" not in err

    monkeypatch.setitem(accuracy.INT8_TARGETS, "min_mask_iou", 0.0)  # the cache holds 1.01's verdict: measured
    source = int8_deploy.parent / "model.onnx"
    source.rename(source.with_suffix(".moved"))  # the FP32 source is needed to measure it
    with pytest.raises(
        UsageError,
        match=r"unrecorded and cannot be measured here .*model.onnx, the FP32 ONNX it was "
        "calibrated from, is not beside it.*calibrate --openvino",
    ):
        open_model(int8_deploy, "openvino")
    unjudged = BackendOptions(allow_failed=True)  # how the benchmark runs it
    with open_model(int8_deploy, "openvino", unjudged) as backend:
        assert _gate(backend.accuracy_gate)["passed"] is None and _gate(backend.accuracy_gate)["measured"] is False
    pixelwise_onnx(source, 64)  # another graph under the source's name
    with pytest.raises(UsageError, match="not the FP32 ONNX it was calibrated from"):
        open_model(int8_deploy, "openvino")


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="auto's rule is for x86-64")
def test_auto_runs_float_onnx_on_openvino_and_int8_on_onnxruntime(int8_deploy: Path) -> None:
    assert open_model(int8_deploy.parent / "model.onnx").name == "openvino"  # faster on every x86 CPU measured
    assert open_model(int8_deploy).name == "onnxruntime"  # the INT8 its calibration gated
    assert open_model(int8_deploy, "auto", BackendOptions(precision="bf16" if NATIVE_BF16 else "fp32")).name == (
        "openvino" if NATIVE_BF16 else "onnxruntime"
    )  # BF16 asked for: OpenVINO
    with pytest.raises(UsageError, match="--providers cuda: not available in this onnxruntime"):  # ORT serves GPUs
        open_model(int8_deploy.parent / "model.onnx", "auto", BackendOptions(providers=("cuda",)))


def test_bad_requests(tmp_path: Path) -> None:
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    with pytest.raises(UsageError, match="--device TPU"):
        open_model(model, "openvino", BackendOptions(device="TPU"))
    with pytest.raises(UsageError, match="fp32 or bf16"):
        open_model(model, "openvino", BackendOptions(precision="fp16"))
    with pytest.raises(UsageError, match="ONNX Runtime runs the precision of the model file"):
        open_model(model, "onnxruntime", BackendOptions(precision="bf16"))
    with pytest.raises(UsageError, match="was built for 64px tiles"):  # the sidecar says so
        open_model(model, "openvino", BackendOptions(tile=32))
    bare = pixelwise_onnx(tmp_path / "bare.onnx", 64, sidecar=False)
    with pytest.raises(UsageError, match="takes 64px tiles but 32 was asked for"):  # the graph says so
        open_model(bare, "openvino", BackendOptions(tile=32, unverified=True))


def test_auto_exclude_with_openvino_searches_until_openvino_passes_too(
    int8_deploy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ONNX Runtime passes at once (targets relaxed); OpenVINO's gates (here a stand-in whose FP32
    gate always passes and whose BF16 gate passes once a layer is back in float) must make
    --auto-exclude keep layers anyway: every gate the sidecar will record counts, BF16 too.
    """
    import onnx

    from sam2ms import accuracy
    from sam2ms.calib import pipeline
    from sam2ms.calib.pipeline import CalibrateOptions, run_calibrate

    monkeypatch.setitem(accuracy.INT8_TARGETS, "min_mask_iou", 0.0)
    monkeypatch.setitem(accuracy.INT8_TARGETS, "max_f1_drop", 1.0)
    full = sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(int8_deploy)).graph.node)
    judged: list[int] = []

    def gates(path: Path, precision: str, tiles: np.ndarray, reference: np.ndarray) -> dict:
        quantized = sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(path)).graph.node)
        judged.append(quantized)
        bf16 = quantized < full
        return {
            "version": "stand-in",
            "device": "CPU",
            "fp32": {"passed": True, "failures": []},
            "bf16": {"passed": bf16, "failures": [] if bf16 else ["F1 drop 0.58 points > 0.5"]},
        }

    monkeypatch.setattr(pipeline, "openvino_checks", gates)
    folder = int8_deploy.parent
    summary = run_calibrate(
        CalibrateOptions(
            onnx=folder / "model.onnx",
            calib_data=folder.parent / "calib",
            out=folder,
            batches=2,
            batch_size=2,
            holdout=3,
            auto_exclude=True,
            openvino=True,
            progress=False,
        )
    )
    search = summary["calibration"]["auto_exclude"]
    assert judged[0] == full and search["kept_layers"] > 0  # ONNX Runtime and OpenVINO FP32 would have kept none
    assert [t["units_in_float"] for t in search["trials"] if t["accepted"]] == [1]
    assert all(t["passed"] for t in search["trials"])  # ONNX Runtime's own verdict, kept apart
    assert summary["accuracy_vs_fp32"]["passed"] and summary["openvino"]["bf16"]["passed"]
    assert len(judged) == len(search["trials"]) + 1  # the first model, then one per trial: none measured twice
