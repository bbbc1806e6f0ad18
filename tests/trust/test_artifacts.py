"""Model folders from strangers: a sidecar is data (one schema, names in fixed tables, files inside
the folder), binds its artifact by size and SHA-256, and an ONNX without one runs only when asked.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from sam2ms.artifacts import SIDECAR_SCHEMA, file_in_folder, read_sidecar, sidecar_path, write_sidecar
from sam2ms.errors import UsageError
from sam2ms.schema import validate

from conftest import json_values, run_cli
from pixelwise import WEIGHTS, pixelwise_onnx

pytestmark = pytest.mark.core  # runs without torch: make test-core

JSON = json_values()


@pytest.fixture()
def tiles(tmp_path: Path) -> Path:
    folder = tmp_path / "tiles"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(folder / "a.png")
    return folder


def _infer(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code, out, err = run_cli(["infer", *args, "--quiet"], capsys)
    assert "Traceback" not in err
    return code, out, err


_DROP = object()


def _patched(model: Path, **changes: object) -> Path:
    """The model's sidecar with fields replaced (a hostile or broken edit)."""
    data = json.loads(sidecar_path(model).read_text())
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key)
        else:
            data[key] = value
    sidecar_path(model).write_text(json.dumps(data))
    return model


def test_an_unknown_builder_is_refused_and_never_imported(tmp_path: Path, tiles: Path) -> None:
    """The probe of the issue: a plan's sidecar naming ``helper`` beside a ``helper.py``, run from that
    folder (``python -m`` puts it first on sys.path): exit 2, and the helper never runs.
    """
    folder = tmp_path / "model"
    folder.mkdir()
    plan = folder / "engine.plan"
    plan.write_bytes(b"not really a plan")
    write_sidecar(plan, {"kind": "tensorrt-plan", "tile": 64, "precision": "fp16", "builder": "tensorrt"})
    _patched(plan, builder="helper")
    marker = tmp_path / "PWNED"
    (folder / "helper.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "sam2ms.cli", "infer", "engine.plan", str(tiles), "-o", str(tmp_path / "out")],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "unknown builder 'helper'" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists()


def test_import_tensorrt_looks_names_up_in_its_table(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from sam2ms.deps import import_tensorrt

    monkeypatch.setattr(importlib, "import_module", lambda name: pytest.fail(f"imported {name}"))
    with pytest.raises(UsageError, match="unknown builder 'os'"):
        import_tensorrt("os", "running a .plan")


def test_a_sidecar_beside_another_model_is_refused(
    tmp_path: Path, tiles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").mkdir()
    model = pixelwise_onnx(tmp_path / "a" / "model.onnx", 64)
    other = tmp_path / "b" / "model.onnx"
    other.parent.mkdir()
    # the same graph with another weight: the same size, other bytes
    data = model.read_bytes()
    old, new = np.float32(WEIGHTS[0]).tobytes(), np.float32(WEIGHTS[0] + 1).tobytes()
    assert data.count(old) == 1
    other.write_bytes(data.replace(old, new))
    sidecar_path(other).write_bytes(sidecar_path(model).read_bytes())
    code, _, err = _infer([str(other), str(tiles), "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and "SHA-256" in err and "belongs to another file" in err
    other.write_bytes(data + b"\0")  # another size: refused without hashing
    code, _, err = _infer([str(other), str(tiles), "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and "bytes, but its sidecar describes a file of" in err
    assert _infer([str(model), str(tiles), "-o", str(tmp_path / "out")], capsys)[0] == 0


def test_an_onnx_without_sidecar_runs_only_unverified(
    tmp_path: Path, tiles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = pixelwise_onnx(tmp_path / "bare.onnx", 64, sidecar=False)
    code, _, err = _infer([str(bare), str(tiles), "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and "no sidecar" in err and "--unverified" in err
    code, out, err = _infer([str(bare), str(tiles), "-o", str(tmp_path / "out"), "--unverified", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["model"]["unverified"] is True
    code, _, err = _infer([str(bare), str(tiles), "-o", str(tmp_path / "out2"), "--unverified"], capsys)
    assert code == 0 and "unverified" in err  # the text report says so too
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    code, out, _ = _infer([str(model), str(tiles), "-o", str(tmp_path / "out3"), "--json"], capsys)
    assert code == 0 and json.loads(out)["model"]["unverified"] is False
    plan = tmp_path / "engine.plan"
    plan.write_bytes(b"x")
    code, _, err = _infer([str(plan), str(tiles), "-o", str(tmp_path / "out"), "--unverified"], capsys)
    assert code == 2 and "a plan runs only with its sidecar" in err


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"tile": "abc"}, "tile: expected an integer"),
        ({"tile": True}, "tile: expected an integer"),
        ({"parity": {"passed": "false", "failures": []}}, "parity.passed: expected true or false, got string 'false'"),
        ({"parity": ["passed"]}, "parity: expected an object"),
        ({"parity": {"failures": []}}, "parity.passed: missing"),
        ({"tile": _DROP}, "tile: missing"),
        ({"normalization": {"mean": [0.5, 0.5], "std": [1, 1, 1]}}, "normalization.mean: expected a list of 3 items"),
        ({"builder": "helper"}, "builder: unknown builder 'helper'"),
        ({"precision": "fp8"}, "precision: expected one of"),
        ({"surprise": 1}, "surprise: unknown key"),
        ({"format_version": 99}, "sidecar format 99 is newer than this sam2ms reads"),
        ({"format": "something"}, "not a sam2ms-sidecar file"),
        (
            {"radiometry": {"bands": [0], "stretch": "none", "percentiles": [2, 98], "low": None, "high": None}},
            "radiometry.bands[0]: expected an integer >= 1",
        ),
        ({"source_onnx": {"file": "../model.onnx"}}, "source_onnx.file: expected a plain file name"),
        ({"artifact": "/etc/passwd"}, "artifact: expected a plain file name"),
    ],
)
def test_every_field_is_checked(
    tmp_path: Path, tiles: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, object], message: str
) -> None:
    model = _patched(pixelwise_onnx(tmp_path / "px.onnx", 64), **changes)
    code, _, err = _infer([str(model), str(tiles), "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and message in err, err
    assert str(sidecar_path(model)) in err


def test_a_sidecar_is_held_to_its_schema_when_written(tmp_path: Path) -> None:
    """The writer checks what its readers will: a slip in an export is caught before a user sees it."""
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    before = sidecar_path(model).read_bytes()
    for fields, said in (
        ({"tile": 0, "precision": "fp32"}, "tile"),
        ({"tile": 64, "precision": "fp8"}, "precision"),
        ({"tile": 64, "precision": "fp32", "parity": {"passed": "yes"}}, "parity"),
    ):
        with pytest.raises(UsageError, match=said):
            write_sidecar(model, fields)
        assert sidecar_path(model).read_bytes() == before  # the sidecar there is left as it was


def test_unreadable_sidecars_are_usage_errors(tmp_path: Path) -> None:
    model = pixelwise_onnx(tmp_path / "px.onnx", 64)
    for text in (
        b"{",
        b'{"tile": NaN}',
        b"[" * 100_000 + b"]" * 100_000,
        b"1" * 5000,
        b"\xff\xfe",
        b" " * (17 << 20),
    ):  # bad syntax, NaN, too deep, a 5000-digit int, not UTF-8, 17 MiB
        sidecar_path(model).write_bytes(text)
        with pytest.raises(UsageError, match=r"px.onnx.json"):
            read_sidecar(model)


def test_names_in_a_sidecar_stay_in_the_model_folder(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    outside = pixelwise_onnx(tmp_path / "elsewhere.onnx", 64)
    (folder / "model.onnx").symlink_to(outside)
    (folder / "local.onnx").write_bytes(b"x")
    artifact = folder / "model.int8.onnx"
    assert file_in_folder(artifact, "local.onnx", "source_onnx") == folder / "local.onnx"
    with pytest.raises(UsageError, match=r"'model.onnx' is a link out of the model's folder"):
        file_in_folder(artifact, "model.onnx", "source_onnx")


def test_the_hash_is_kept_per_version_of_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sam2ms import digests

    monkeypatch.setenv("SAM2MS_CACHE_DIR", str(tmp_path / "cache"))
    artifact = tmp_path / "a.bin"
    artifact.write_bytes(b"one")
    first = digests.cached_sha256(artifact)
    assert first == digests.sha256_file(artifact)
    monkeypatch.setattr(digests, "sha256_file", lambda path: pytest.fail("hashed again"))
    assert digests.cached_sha256(artifact) == first  # a second run: one stat, one small read
    monkeypatch.undo()
    monkeypatch.setenv("SAM2MS_CACHE_DIR", str(tmp_path / "cache"))
    stat = artifact.stat()
    artifact.write_bytes(b"two")  # same size, then the old mtime restored (as tar or touch -r would)
    os.utime(artifact, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert digests.cached_sha256(artifact) == digests.sha256_file(artifact) != first  # the ctime moved
    entry = next((tmp_path / "cache" / "digests").glob("*.json"))
    entry.write_text('{"identity": "forged", "sha256": "0"}')  # an entry for another file is ignored
    assert digests.cached_sha256(artifact) == digests.sha256_file(artifact)


def _valid_sidecar() -> dict:
    return {
        "format": "sam2ms-sidecar",
        "format_version": 1,
        "artifact": "model.onnx",
        "sha256": "0" * 64,
        "size_bytes": 10,
        "tile": 64,
        "precision": "fp32",
        "kind": "onnx",
        "parity": {"passed": True, "failures": [], "max_abs": 1e-6},
        "openvino": {"version": "2026", "fp32": {"passed": True}, "bf16": {"measured": False, "why": "x"}},
    }


@given(value=JSON)
def test_any_json_is_a_sidecar_or_a_usage_error(value: object) -> None:
    with contextlib.suppress(UsageError):
        validate(value, SIDECAR_SCHEMA, "s.json", "re-export")


@given(
    key=st.sampled_from([*sorted(_valid_sidecar()), "calibration", "radiometry", "inputs", "builder", "x"]), value=JSON
)
def test_any_field_edit_is_valid_or_a_usage_error(key: str, value: object) -> None:
    data = _valid_sidecar()
    data[key] = value
    try:
        checked = validate(data, SIDECAR_SCHEMA, "s.json", "re-export")
    except UsageError:
        return
    assert checked[key] == value  # what passes is what the readers get
