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
    assert _names(_extras()[""]) == {"numpy", "pillow", "typer", "rich"}


def test_extras_metadata() -> None:
    extras = _extras()
    assert {"cpu", "ort-gpu", "trt", "trt-cu12", "rtx", "rtx-cu12", "train", "geo", "dev"} <= set(extras)
    assert _names(extras["cpu"]) == {"onnxruntime"} and _names(extras["ort-gpu"]) == {"onnxruntime-gpu"}
    assert {"torch", "torchvision", "sam2", "onnx", "onnxslim"} <= _names(extras["train"])
    for name, reqs in extras.items():
        # installed together the two wheels break each other (microsoft/onnxruntime#26996)
        assert not {"onnxruntime", "onnxruntime-gpu"} <= _names(reqs), name
    for name in ("trt", "trt-cu12", "rtx", "rtx-cu12"):
        reqs = {r.name.lower(): r for r in extras[name]}
        engine = next(r for n, r in reqs.items() if n.startswith("tensorrt"))
        cuda_major = int(engine.name.rsplit("cu", 1)[1])
        spec = reqs["cuda-python"].specifier
        assert spec.contains(f"{cuda_major}.0") and not spec.contains(f"{cuda_major + 1}.0") \
            and not spec.contains(f"{cuda_major - 1}.9"), (name, str(spec))


def test_torch_free_modules_do_not_import_torch() -> None:
    """The deployment runtime imports metrics, preprocessing and synth without torch."""
    code = ("import sys, sam2ms.runtime, sam2ms.metrics, sam2ms.preprocess, sam2ms.data, sam2ms.export, sam2ms.calib;"
            "import sam2ms.cli;"
            "bad = [m for m in ('torch', 'torchvision', 'sam2') if m in sys.modules];"
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("args,blocked,extra", [
    (["train", "--data", ".", "-o", "x"], "torch", "sam2ms[train]"),
    (["info", "sam2ms_nano"], "torch", "sam2ms[train]"),
    (["export", "--ckpt", "x.pt", "-o", "x"], "torch", "sam2ms[train]"),
    (["calibrate", "m.onnx", "-o", "x"], "onnx", "sam2ms[train]"),
    (["infer", "m.onnx", ".", "-o", "x", "--unverified"], "onnxruntime", "sam2ms[cpu]"),
])
def test_missing_library_names_the_extra(tmp_path, args: list[str], blocked: str, extra: str) -> None:
    """On a host without the library (simulated: its import fails), the command says which extra
    to install — exit 2, one line, no traceback."""
    (tmp_path / "m.onnx").write_bytes(b"x")
    # openvino too: with it, auto would run the .onnx there and never need onnxruntime
    code = (f"import sys; sys.modules[{blocked!r}] = sys.modules['openvino'] = None; sys.argv = ['sam2ms', *{args!r}];"
            "from sam2ms.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and f"needs {blocked}" in proc.stderr and extra in proc.stderr


def test_console_script_reports_errors_without_traceback(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "sam2ms.cli", "eval", "--ckpt", str(tmp_path / "x.pt"),
                           "--data", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and str(tmp_path) in proc.stderr
