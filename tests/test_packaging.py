"""Packaging facts later stages rely on: the lean deployment install and the extras' metadata."""

import subprocess
import sys
from importlib.metadata import metadata, requires

import pytest
from packaging.requirements import Requirement


def _extras() -> dict[str, list[Requirement]]:
    """Requirements of the installed sam2ms by extra ('' = the core), from its own metadata."""
    reqs = [Requirement(line) for line in requires("sam2ms") or []]
    out = {"": [r for r in reqs if r.marker is None]}
    for extra in metadata("sam2ms").get_all("Provides-Extra") or []:
        out[extra] = [r for r in reqs if r.marker is not None and r.marker.evaluate({"extra": extra})]
    return out


def _names(reqs: list[Requirement]) -> set[str]:
    return {r.name.lower() for r in reqs}


def test_core_install_is_lean() -> None:
    """A deployment host gets numpy, Pillow and the CLI; no torch, no engine it did not ask for."""
    # typing-extensions (typing.override before 3.12) comes with typer's pydantic anyway: named, not added
    assert _names(_extras()[""]) == {"numpy", "pillow", "typer", "rich", "typing-extensions"}


def test_extras_metadata() -> None:
    extras = _extras()
    assert {"cpu", "ort-gpu", "trt", "trt-cu12", "rtx", "rtx-cu12", "train", "geo", "dev"} <= set(extras)
    assert _names(extras["cpu"]) == {"onnxruntime"} and _names(extras["ort-gpu"]) == {"onnxruntime-gpu"}
    assert {"torch", "torchvision", "sam2", "onnx", "onnxslim"} <= _names(extras["train"])
    for name, reqs in extras.items():
        # installed together the two wheels break each other (microsoft/onnxruntime#26996)
        assert not {"onnxruntime", "onnxruntime-gpu"} <= _names(reqs), name
    for name in ("trt", "trt-cu12", "rtx", "rtx-cu12"):
        by_name = {r.name.lower(): r for r in extras[name]}
        engine = next(r for n, r in by_name.items() if n.startswith("tensorrt"))
        cuda_major = int(engine.name.rsplit("cu", 1)[1])
        spec = by_name["cuda-python"].specifier
        assert (
            spec.contains(f"{cuda_major}.0")
            and not spec.contains(f"{cuda_major + 1}.0")
            and not spec.contains(f"{cuda_major - 1}.9")
        ), (name, str(spec))


def test_torch_free_modules_do_not_import_torch() -> None:
    """The deployment runtime imports metrics, preprocessing and synth without torch."""
    code = (
        "import sys, sam2ms.runtime, sam2ms.metrics, sam2ms.preprocess, sam2ms.data, sam2ms.export, sam2ms.calib;"
        "import sam2ms.cli;"
        "bad = [m for m in ('torch', 'torchvision', 'sam2') if m in sys.modules];"
        "assert not bad, bad"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "args,blocked,extra",
    [
        (["train", "--data", ".", "-o", "x"], "torch", "sam2ms[train]"),
        (["info", "sam2ms_nano"], "torch", "sam2ms[train]"),
        (["export", "--ckpt", "x.pt", "-o", "x"], "torch", "sam2ms[train]"),
        (["calibrate", "m.onnx", "-o", "x"], "onnx", "sam2ms[train]"),
        (["infer", "m.onnx", ".", "-o", "x", "--unverified"], "onnxruntime", "sam2ms[cpu]"),
    ],
)
def test_missing_library_names_the_extra(tmp_path, args: list[str], blocked: str, extra: str) -> None:
    """On a host without the library (simulated: its import fails), the command says which extra
    to install — exit 2, one line, no traceback.
    """
    (tmp_path / "m.onnx").write_bytes(b"x")
    # openvino too: with it, auto would run the .onnx there and never need onnxruntime
    code = (
        f"import sys; sys.modules[{blocked!r}] = sys.modules['openvino'] = None; sys.argv = ['sam2ms', *{args!r}];"
        "from sam2ms.cli import main; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and f"needs {blocked}" in proc.stderr and extra in proc.stderr


def test_console_script_reports_errors_without_traceback(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sam2ms.cli", "eval", "--ckpt", str(tmp_path / "x.pt"), "--data", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and str(tmp_path) in proc.stderr


@pytest.mark.slow
def test_the_wheel_is_a_working_deployment_install(tmp_path) -> None:
    """The README's deployment install from a clone, as an artifact: the wheel built from this
    checkout, installed with [cpu] into a fresh venv (packages from the index), runs sam2ms-infer on
    an exported ONNX — without torch, and with every package-dir mapping in place.
    """
    from pathlib import Path

    from pixelwise import pixelwise_onnx

    repo = Path(__file__).resolve().parents[1]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(repo),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("sam2ms-*.whl"))
    venv = tmp_path / "lean"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[cpu]"], capture_output=True, text=True)
    if pip.returncode != 0 and "No matching distribution" in pip.stderr:
        pytest.skip(f"the package index cannot be reached: {pip.stderr.strip().splitlines()[-1]}")
    assert pip.returncode == 0, pip.stderr
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    from PIL import Image

    Image.new("RGB", (100, 80), (200, 30, 90)).save(tmp_path / "scene.png")
    run = subprocess.run(
        [
            str(venv / "bin" / "sam2ms-infer"),
            str(model),
            str(tmp_path / "scene.png"),
            "-o",
            str(tmp_path / "out"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "scene.mask.png").is_file()
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sam2ms.runtime, sam2ms.export, "
            "sam2ms.calib; import importlib.util as u; print(u.find_spec('torch'))",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )  # not the checkout: the installed wheel
    assert probe.returncode == 0 and probe.stdout.strip() == "None", probe.stderr
