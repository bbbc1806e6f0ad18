"""Output folders: never the input, one run at a time, nothing half-written after Ctrl-C, SIGTERM or a
full disk, and every check that can fail runs before the first output is written.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2ms.errors import UsageError, WriteFailed
from sam2ms.folder_lock import LOCK_NAME, FolderLock

from conftest import has_module, run_cli
from pixelwise import pixelwise_onnx


def _scenes(folder: Path, count: int, size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), np.uint8)).save(folder / f"s{i}.png")
    return folder


def _infer(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code, out, err = run_cli(["infer", *args, "--quiet"], capsys)
    assert "Traceback" not in err
    return code, out, err


def test_the_output_folder_is_never_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _scenes(tmp_path / "in", 2, 64)
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    for out in (src, src / "masks"):
        code, _, err = _infer([model, str(src), "-o", str(out)], capsys)
        assert code == 2 and "inside the input folder" in err
    (tmp_path / "list.txt").write_text("in\n")
    code, _, err = _infer([model, f"@{tmp_path / 'list.txt'}", "-o", str(src / "masks")], capsys)
    assert code == 2 and "inside the input folder" in err
    assert sorted(p.name for p in src.iterdir()) == ["s0.png", "s1.png"]  # nothing made there, not even -o
    assert _infer([model, str(src), "-o", str(tmp_path / "out")], capsys)[0] == 0


def test_one_run_per_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _scenes(tmp_path / "in", 2, 64)
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    out = tmp_path / "out"
    out.mkdir()
    first_runs_temp = out / ".s0.mask.png.abc123.tmp"  # a file the first run is writing
    first_runs_temp.write_bytes(b"being written")
    with FolderLock(out):  # the first run
        code, _, err = _infer([model, str(src), "-o", str(out), "--resume"], capsys)
        assert code == 2 and f"another sam2ms run (pid {os.getpid()} on" in err
        assert first_runs_temp.exists() and not list(out.glob("*.mask.png"))
        with pytest.raises(UsageError, match="another sam2ms run"):
            FolderLock(out).__enter__()
    assert not (out / LOCK_NAME).exists()  # released and removed
    first_runs_temp.unlink()
    (out / LOCK_NAME).write_text("pid 999999999 on a machine that died\n")  # a stale lock: nobody holds it
    code, out_json, err = _infer([model, str(src), "-o", str(out), "--json"], capsys)
    assert code == 0, err
    summary = json.loads(out_json)
    assert summary["files"] == 2 and not (out / LOCK_NAME).exists()
    assert summary["stale_lock"] == "pid 999999999 on a machine that died"


_INTERRUPT = """
import os, signal, sys, threading
from sam2ms.runtime import pipeline

# Ctrl-C as a terminal delivers it: under pytest-xdist the worker ignores SIGINT and a child
# inherits that, so Python would start with SIGINT ignored and the run would finish untouched
signal.signal(signal.SIGINT, signal.default_int_handler)

finish = pipeline._Scheduler._finish
sent, once = [], threading.Lock()

def finish_then_signal(self, job):
    finish(self, job)
    # once, after the first scene written (two write threads may both finish before either looks:
    # "files == 1" was then never seen and nothing was sent, under load in CI)
    with once:
        if self.stats.files >= 1 and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.{sig})

pipeline._Scheduler._finish = finish_then_signal
from sam2ms.cli import main
sys.argv = ["sam2ms", "infer", *sys.argv[1:]]
main()
"""


@pytest.mark.skipif(not has_module("rasterio"), reason="GeoTIFF outputs stage files: needs rasterio ([geo])")
@pytest.mark.parametrize("sig,code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_an_interrupted_run_leaves_no_temp_files_and_resumes_identically(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sig: str, code: int
) -> None:
    src = _scenes(tmp_path / "in", 4, 320)
    rng = np.random.default_rng(8)
    for i in (1, 2, 3):  # larger than s0: still under way when s0's finish sends the signal, however loaded the host
        Image.fromarray(rng.integers(0, 256, (960, 960, 3), np.uint8)).save(src / f"s{i}.png")
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    args = [model, str(src), "--format", "tif", "--probabilities", "--workers", "2", "--quiet"]
    assert _infer([*args, "-o", str(tmp_path / "full")], capsys)[0] == 0
    part = tmp_path / "part"
    proc = subprocess.run(
        [sys.executable, "-c", _INTERRUPT.format(sig=sig), *args, "-o", str(part)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    written = sorted(p.name for p in part.iterdir())
    assert written and not [n for n in written if n.startswith(".")], written  # no stage, temp or lock file
    assert len(written) < 8  # interrupted: not every scene was written
    resumed, out, err = _infer([*args, "-o", str(part), "--resume", "--json"], capsys)
    assert resumed == 0, err
    assert json.loads(out)["skipped_existing"] == len(written) // 2
    for f in sorted((tmp_path / "full").iterdir()):
        assert f.read_bytes() == (part / f.name).read_bytes(), f.name


@pytest.mark.skipif(not has_module("torch"), reason="the reference needs torch ([train])")
def test_a_bad_reference_is_refused_before_any_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _scenes(tmp_path / "in", 1, 64)
    model = str(pixelwise_onnx(tmp_path / "px.onnx", 64))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    code, _, err = _infer(
        [model, str(src), "-o", str(tmp_path / "out"), "--check-against", str(tmp_path / "bad.pt")], capsys
    )
    assert code == 2 and "bad.pt" in err
    assert not list((tmp_path / "out").rglob("*.png")) if (tmp_path / "out").exists() else True


def test_a_full_disk_loses_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sam2ms import fileio

    target = tmp_path / "model.onnx"
    target.write_bytes(b"the good old model")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(WriteFailed, match=f"{target}: could not write it \\(No space left on device\\)") as info:
        fileio.atomic_write(target, lambda f: f.write(b"x" * 1000))
    assert info.value.exit_code == 1 and isinstance(info.value, OSError)
    assert target.read_bytes() == b"the good old model" and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


@pytest.mark.slow
def test_export_to_a_full_disk_is_one_line(
    trained_nano: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:

    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    out = tmp_path / "deploy"
    code, _, err = run_cli(
        ["export", "--ckpt", str(trained_nano), "--tile", "64", "--onnx-only", "-o", str(out)], capsys
    )
    assert code == 1 and f"{out / 'model.onnx'}: could not write it" in err and "Traceback" not in err
    assert not out.exists()  # no partial artifact, no temp file, not even the folder the export created


def _external_data_model(folder: Path, location: str = "model.data") -> Path:
    """The pixelwise model with its weights in an external data file, and its sidecar."""
    import onnx

    from sam2ms.artifacts import write_sidecar

    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load(pixelwise_onnx(folder / "px.onnx", 64, sidecar=False))
    onnx.save(model, folder / "px.onnx", save_as_external_data=True, location="model.data", size_threshold=0)
    if location != "model.data":
        model = onnx.load(folder / "px.onnx", load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        onnx.save(model, folder / "px.onnx")
    write_sidecar(folder / "px.onnx", {"kind": "onnx", "tile": 64, "precision": "fp32", "input_format": "float32"})
    return folder / "px.onnx"


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_external_data_must_be_beside_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    if not has_module(backend):
        pytest.skip(f"{backend} is not installed")
    src = _scenes(tmp_path / "in", 1, 64)
    ok = _external_data_model(tmp_path / "ok")
    assert _infer([str(ok), str(src), "-o", str(tmp_path / "o1"), "--backend", backend], capsys)[0] == 0
    (tmp_path / "ok" / "model.data").unlink()
    code, _, err = _infer([str(ok), str(src), "-o", str(tmp_path / "o2"), "--backend", backend], capsys)
    assert code == 2 and str(ok) in err and "model.data" in err
    (tmp_path / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    escaping = _external_data_model(tmp_path / "esc", location="../secret.bin")
    code, _, err = _infer([str(escaping), str(src), "-o", str(tmp_path / "o3"), "--backend", backend], capsys)
    assert code == 2 and str(escaping) in err and ("escapes model directory" in err or "outside the base" in err)


def test_no_traceback_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sam2ms.runtime import pipeline

    def unforeseen(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something nobody planned for")

    monkeypatch.setattr(pipeline, "run_inference", unforeseen)
    src = _scenes(tmp_path / "in", 1, 64)
    args = [str(pixelwise_onnx(tmp_path / "px.onnx", 64)), str(src), "-o", str(tmp_path / "out")]
    code, _, err = _infer(args, capsys)
    assert code == 1 and "RuntimeError: something nobody planned for" in err and "SAM2MS_DEBUG=1" in err
    monkeypatch.setenv("SAM2MS_DEBUG", "1")
    with pytest.raises(RuntimeError, match="nobody planned"):
        run_cli(["infer", *args], capsys)
    with pytest.raises(UsageError, match="--overlap"):  # our own errors too
        run_cli(["infer", *args, "--overlap", "64"], capsys)
