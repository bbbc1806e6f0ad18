"""``sam2ms bench``: statistics, schema, a tiny real run on ONNX Runtime CPU, plots, errors."""

import json
from pathlib import Path

import pytest

from sam2ms.bench.options import BenchOptions
from sam2ms.bench.peaks import cpu_peak, mfu, peak_tflops
from sam2ms.bench.report import REPORT_SCHEMA
from sam2ms.bench.runner import check_batches
from sam2ms.bench.stats import latency_ms, throughput
from sam2ms.errors import UsageError
from sam2ms.runtime.backends.base import ModelInfo

from conftest import has_module, run_cli


def test_latency_percentiles_on_known_timings() -> None:
    seconds = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    lat = latency_ms(seconds)
    assert lat["mean"] == pytest.approx(50.5)
    assert lat["p50"] == pytest.approx(50.5)  # between the 50th and 51st value
    assert lat["p90"] == pytest.approx(90.1) and lat["p99"] == pytest.approx(99.01)
    assert (lat["min"], lat["max"]) == pytest.approx((1.0, 100.0))
    assert latency_ms([0.004])["p99"] == pytest.approx(4.0)
    with pytest.raises(ValueError):
        latency_ms([])
    thr = throughput(tiles=40, wall_seconds=2.0, tile=1024)
    assert thr["tiles_per_s"] == 20 and thr["megapixels_per_s"] == pytest.approx(20 * 1024 * 1024 / 1e6)


ZEN5_CPUINFO = "processor\t: 0\ncpu MHz\t\t: 2700.000\nflags\t\t: fpu avx2 fma avx512f avx512_bf16 avx512_vnni\n"
AVX2_CPUINFO = "processor\t: 0\ncpu MHz\t\t: 2445.0\nflags\t\t: fpu avx avx2 fma\n"


def test_peaks_and_mfu() -> None:
    assert peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == pytest.approx(989.4)
    assert peak_tflops("NVIDIA GeForce RTX 4090", "fp16") == pytest.approx(165.2)
    assert peak_tflops("Some Other CPU", "fp32") is None
    # issue 16's machine: 2 Zen 5 cores at 2.7 GHz reach ~690 GFLOP/s in BF16
    zen5 = cpu_peak(ZEN5_CPUINFO, cores=2)
    assert zen5 is not None and zen5["tflops"] == pytest.approx({"fp32": 0.3456, "bf16": 0.6912, "int8": 1.3824})
    # Zen 4 (AMD family 25 with AVX-512): 256-bit datapaths, half of Zen 5's rates
    zen4 = cpu_peak("vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n" + ZEN5_CPUINFO, cores=2)
    assert zen4 is not None and zen4["tflops"] == pytest.approx({"fp32": 0.1728, "bf16": 0.3456, "int8": 0.6912})
    avx2 = cpu_peak(AVX2_CPUINFO, cores=2)
    assert (
        avx2 is not None
        and avx2["tflops"]["fp32"] == pytest.approx(2 * 32 * 2.445e9 / 1e12)
        and "bf16" not in avx2["tflops"]
    )
    assert cpu_peak("no flags here", cores=2) is None
    assert mfu(1e12, 100.0, 1000.0) == pytest.approx(0.1)  # 100 TFLOP/s of 1000
    assert mfu(None, 100.0, 1000.0) is None and mfu(1e12, 100.0, None) is None


def test_reference_found_from_a_relative_sidecar_path(tmp_path: Path) -> None:
    from sam2ms.bench.subjects import find_checkpoint
    from sam2ms.digests import sha256_file

    (tmp_path / "run").mkdir()
    (tmp_path / "export").mkdir()
    ckpt = tmp_path / "run" / "best.pt"
    ckpt.write_bytes(b"weights")
    model = tmp_path / "export" / "model.onnx"
    recorded = {"path": "run/best.pt", "sha256": sha256_file(ckpt)}  # relative to where export ran
    assert find_checkpoint(model, recorded) == ckpt.resolve()
    assert find_checkpoint(model, {**recorded, "sha256": "0" * 64}) is None  # same name, other file
    assert find_checkpoint(model, {"path": "run/missing.pt", "sha256": recorded["sha256"]}) is None


def test_batch_beyond_profile_names_it() -> None:
    info = ModelInfo("engine.plan", "tensorrt-plan", 64, "fp16", min_batch=1, max_batch=4)
    check_batches("engine.plan", info, [1, 4])
    with pytest.raises(UsageError, match=r"--batch 8: engine.plan was built for batches 1\.\.4"):
        check_batches("engine.plan", info, [1, 8])


@pytest.fixture(scope="module")
def small_onnx(trained_nano: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sam2ms.export.pipeline import ExportOptions, run_export

    out = tmp_path_factory.mktemp("bench")
    run_export(ExportOptions(ckpt=trained_nano, out=out, tile=64, onnx_only=True, check=False))
    return out / "model.onnx"


def test_tiny_real_run(small_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("matplotlib")
    report_path, plot_path, md_path = tmp_path / "r.json", tmp_path / "p.png", tmp_path / "t.md"
    code, out, err = run_cli(
        [
            "bench",
            str(small_onnx),
            "--batch",
            "1,2",
            "--streams",
            "1,2",
            "--iterations",
            "3",
            "--warmup",
            "1",
            "--threads",
            "1",
            "--accuracy-tiles",
            "2",
            "--json",
            str(report_path),
            "--plot",
            str(plot_path),
            "--markdown",
            str(md_path),
            "--backend",
            "onnxruntime",
            "--torch",
            "fp32",
        ],
        capsys,
    )
    assert code == 0, err
    report = json.loads(report_path.read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    rows = report["rows"]
    onnx = [r for r in rows if r["backend"] == "onnxruntime"]
    torch_rows = [r for r in rows if r["reference"]]
    assert {(r["batch"], r["streams"]) for r in onnx} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert {(r["batch"], r["streams"]) for r in torch_rows} == {(1, 1), (2, 1)}  # one lane: 2 streams skipped
    assert any(s["subject"] == "pytorch eager fp32" and s["streams"] == "2" for s in report["skipped"])
    for r in onnx:
        assert r["latency_ms"]["p50"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"]
        assert r["vs_reference"]["throughput"] > 0 and r["accuracy"]["reference"] == "pytorch eager fp32"
        assert r["accuracy"]["max_abs"] < 1e-3 and r["accuracy"]["mask_iou"] == pytest.approx(1.0)
        assert r["flops_per_tile"] > 0 and r["gflops_per_s"] > 0
        # --threads 1: the peak of the one core it used
        assert r["mfu"] == pytest.approx(r["gflops_per_s"] / 1000 / cpu_peak(cores=1)["tflops"]["fp32"])  # type: ignore[index]
        assert r["vs_best_pytorch"]["subject"] == "pytorch eager fp32"
    assert report["isolated"] and len({r["pid"] for r in rows}) == 2  # one process per subject
    assert report["host"]["cpu_peak"]["cores"] == 1
    ref = next(r for r in torch_rows if r["batch"] == 1)
    assert ref["vs_reference"]["throughput"] == pytest.approx(1.0)
    assert plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = md_path.read_text()
    assert table.count("\n| model.onnx |") == 4 and "× best PyTorch" in table and table in out + "\n"
    from sam2ms.bench.report import save_report

    assert save_report(report, stem=tmp_path / "again") == table
    assert json.loads((tmp_path / "again.json").read_text()) == report and (tmp_path / "again.png").is_file()
    bad = dict(report, schema="sam2ms-bench/0")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, REPORT_SCHEMA)


def test_bench_errors(small_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    odd = tmp_path / "model.xyz"
    odd.write_bytes(b"x")
    for args, msg in [
        ([str(odd)], "unknown model kind"),
        ([str(small_onnx), "--iterations", "0"], "'--iterations'"),
        ([str(small_onnx), "--batch", "0"], "positive integers"),
        ([str(small_onnx), "--batch", "a,b"], "comma-separated integers"),
        ([str(small_onnx), "--torch", "fp8"], "--torch fp8"),
        ([str(small_onnx), "--backend", "auto,openvino"], "--backend auto,openvino"),
        ([str(small_onnx), "--backend", "tpu"], "--backend tpu"),
        ([str(small_onnx), "--openvino-precision", "fp16"], "--openvino-precision fp16"),
        ([str(small_onnx), "--plot", str(tmp_path / "p.svg")], "give a .png path"),
        ([str(tmp_path / "none.onnx")], "model file not found"),
    ]:
        code, _, err = run_cli(["bench", *args], capsys)
        assert code == 2 and msg in err and "Traceback" not in err, (args, err)


def test_reference_runs_at_the_artifact_tile(trained_nano: Path, tmp_path: Path) -> None:
    """A checkpoint trained at 64 px, exported at 96 px: the PyTorch reference runs at 96 px
    (the authors train at 352 px and deploy at 1024 px).
    """
    from sam2ms.bench.runner import run_bench
    from sam2ms.export.pipeline import ExportOptions, run_export

    run_export(ExportOptions(ckpt=trained_nano, out=tmp_path, tile=96, onnx_only=True, check=False))
    report = run_bench(
        BenchOptions(
            models=[tmp_path / "model.onnx"],
            iterations=1,
            warmup=0,
            accuracy_tiles=1,
            threads=1,
            backend="onnxruntime",
            isolate=False,
        )
    )
    assert report["tile"] == 96 and {r["subject"] for r in report["rows"]} == {"model.onnx", "pytorch eager fp32"}
    onnx_row = next(r for r in report["rows"] if r["subject"] == "model.onnx")
    assert onnx_row["accuracy"]["max_abs"] < 1e-4  # uint8 ONNX vs the PyTorch reference, same 96 px tiles


def test_headline_ratio_is_against_the_best_accurate_pytorch_row() -> None:
    from sam2ms.bench.rows import BenchRow, Ratio
    from sam2ms.bench.runner import add_ratios

    def row(subject: str, backend: str, tiles_per_s: float, iou: float, reference: bool = False) -> BenchRow:
        return BenchRow(
            subject=subject,
            backend=backend,
            kind="onnx",
            precision="fp32",
            reference=reference,
            device="cpu",
            batch=1,
            streams=1,
            latency_ms={"p50": 1000 / tiles_per_s},
            throughput={"tiles_per_s": tiles_per_s},
            split_ms=None,
            memory_mb={},
            checks_passed=None,
            flops_per_tile=1e9,
            peak_tflops=None,
            mfu=None,
            pid=1,
            accuracy={"mask_iou": iou},
        )

    rows = [
        row("pytorch eager fp32", "torch", 2.0, 1.0, reference=True),
        row("pytorch eager bf16", "torch", 9.0, 0.99),
        row("pytorch compiled fp32", "torch", 4.0, 1.0),
        row("model.onnx (openvino bf16)", "openvino", 8.0, 0.999),
    ]
    add_ratios(rows)
    ov = rows[-1]
    assert ov.vs_best_pytorch == Ratio(2.0, 0.5, "pytorch compiled fp32")
    assert ov.vs_reference is not None and ov.vs_reference.throughput == 4.0 and ov.gflops_per_s == 8.0
    best = {"throughput": 2.0, "latency_p50": 0.5, "subject": "pytorch compiled fp32"}
    assert ov.to_json()["vs_best_pytorch"] == best  # the report holds the record


@pytest.mark.skipif(not has_module("openvino"), reason="the [openvino] extra is not installed")
def test_openvino_rows_beside_onnxruntime(small_onnx: Path) -> None:
    from sam2ms.bench.runner import run_bench
    from sam2ms.runtime.backends.base import cpu_has_native_bf16

    report = run_bench(
        BenchOptions(models=[small_onnx], iterations=1, warmup=0, accuracy_tiles=1, threads=1, isolate=False)
    )
    subjects = {r["subject"]: r for r in report["rows"]}
    assert {"model.onnx", "model.onnx (openvino)", "pytorch eager fp32"} <= set(subjects)
    assert subjects["model.onnx (openvino)"]["accuracy"]["max_abs"] < 1e-4
    assert len({r["pid"] for r in report["rows"]}) == 1  # --in-process
    if not cpu_has_native_bf16():
        assert {"subject": "model.onnx (openvino bf16)", "why": "this CPU has no native BF16"} in report["skipped"]


def test_what_cannot_run_is_found_first_and_listed(
    small_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plan on a host without a GPU is a row marked "not run here" beside the measured ones, not an
    abort after them; a batch outside its profile and a file of no known kind are refused before
    anything is measured.
    """
    from sam2ms.artifacts import write_sidecar
    from sam2ms.bench.subjects import cannot_run_here

    if cannot_run_here("tensorrt") is None:
        pytest.skip("this host can run TensorRT plans")
    plan = tmp_path / "engine.plan"
    plan.write_bytes(b"a plan for some GPU")
    write_sidecar(
        plan,
        {
            "kind": "tensorrt-plan",
            "tile": 64,
            "precision": "fp16",
            "builder": "tensorrt_rtx",
            "batch_profile": [1, 2, 4],
        },
    )
    args = [
        "bench",
        str(small_onnx),
        str(plan),
        "--iterations",
        "2",
        "--warmup",
        "1",
        "--backend",
        "onnxruntime,tensorrt",
        "--torch",
        "fp32",
        "--in-process",
        "--markdown",
        str(tmp_path / "t.md"),
    ]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    table = (tmp_path / "t.md").read_text()
    assert "| model.onnx |" in table and "| engine.plan (not run here: " in table and "GPU" in table
    code, _, err = run_cli([*args[:-2], "--batch", "8", "--markdown", str(tmp_path / "u.md")], capsys)
    assert code == 2 and "--batch 8: engine.plan was built for batches 1..4" in err
    assert not (tmp_path / "u.md").exists() and "measuring" not in err


def test_pipeline_bench_measures_capacity_efficiency_and_threads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(
        [
            "bench",
            "--pipeline",
            "--scenes",
            "2",
            "--scene-size",
            "192",
            "--tile",
            "64",
            "--cores",
            "1",
            "--engine-load",
            "0.5",
            "--engine-ms",
            "2",
            "--engine-gil-fraction",
            "0.5",
            "--single",
            "256",
            "--work",
            str(tmp_path),
            "--json",
            "-",
        ],
        capsys,
    )
    assert code == 0, err
    report = json.loads(out)
    rows = report["rows"]
    assert set(rows) == {
        "free, 1 core(s)",
        "engine 0.5 of capacity",
        "engine 0.5 of capacity, GIL 50%",
        "engine 2 ms/tile",
        "engine 2 ms/tile, GIL 50%",
        "one 256² scene, engine 0.5 of capacity",
        "one 256² scene, engine 2 ms/tile",
    }
    assert rows["one 256² scene, engine 2 ms/tile"]["tiles"] == 25
    free = rows["free, 1 core(s)"]
    assert free["tiles"] == 2 * 16 and report["host_capacity"]["tiles_per_s"] == free["tiles_per_s"] > 0
    assert rows["engine 2 ms/tile"]["engine_tiles_per_s"] == pytest.approx(500.0)
    for row in rows.values():
        assert row["failed"] == 0 and row["peak_rss_mib"] > 0
        assert {"scheduler", "decode", "lane", "blend", "write"} <= set(row["thread_busy"])
    # a slower engine cannot be outrun: the pipeline keeps at most the engine's rate
    assert 0 < rows["engine 2 ms/tile"]["efficiency"] <= 1.05


def test_pipeline_bench_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in (
        (["--io", "jpg"], "--io jpg: use one of png, tif"),
        (["--engine-load", "0"], "--engine-load 0.0: fractions of the host capacity"),
        (["--cores", "999"], "--cores 999: this machine lets us use 1.."),
        (["a.onnx", "b.onnx"], "at most one MODEL"),
    ):
        code, _, err = run_cli(["bench", "--pipeline", "--work", str(tmp_path), *args], capsys)
        assert code == 2 and message in err, err
    code, _, err = run_cli(["bench"], capsys)
    assert code == 2 and "give at least one MODEL" in err
