"""mypy sees the seams between the stages: a call across them with the wrong types is an error
(before tools/typecheck.py, every import of sam2ms.runtime inside export/ was ``Any``).
"""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")
ROOT = Path(__file__).resolve().parents[1]


def _check(program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "typecheck.py"), "--program", program],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def test_a_wrong_call_across_a_seam_is_caught() -> None:
    # what export/ and calib/ do: import the runtime by its installed name
    bad = _check("from sam2ms.runtime.backends import open_model\nopen_model(1.5, backend=2)\n")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert 'Argument 1 to "open_model" has incompatible type "float"; expected "str | Path"' in bad.stdout
    good = _check(
        "from pathlib import Path\nfrom sam2ms.runtime.backends import open_model\n"
        "open_model(Path('m.onnx'), backend='onnxruntime')\n"
    )
    assert good.returncode == 0, good.stdout + good.stderr


def test_import_time_names_follow_only_what_runs_at_import() -> None:
    import ast

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from contracts import ImportTimeContract, _import_time_names
    finally:
        sys.path.remove(str(ROOT / "tools"))
    source = """
from typing import TYPE_CHECKING
import numpy as np
from . import tiling
from ..preprocess import normalize
if TYPE_CHECKING:
    import torch
try:
    import onnx
except ImportError:
    import rasterio
class Lane:
    import ray
    def infer(self):
        import tensorrt
def run():
    import openvino
"""
    names = set(_import_time_names(ast.parse(source), "sam2ms.runtime.pipeline", is_package=False))
    assert {"numpy", "onnx", "rasterio", "ray", "sam2ms.runtime.tiling", "sam2ms.preprocess.normalize"} <= names
    assert not {"torch", "tensorrt", "openvino"} & names
    edges = {"a": {"b"}, "b": {"c", "torch"}, "c": {"a"}}
    assert ImportTimeContract._chain("a", edges, {"torch"}) == ["a", "b", "torch"]
    assert ImportTimeContract._chain("c", {"c": {"a"}, "a": set()}, {"torch"}) is None
