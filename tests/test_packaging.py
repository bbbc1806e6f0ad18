"""Packaging facts later stages rely on."""

import subprocess
import sys


def test_torch_free_modules_do_not_import_torch() -> None:
    """The deployment runtime imports metrics, preprocessing and synth without torch."""
    code = ("import sys, sam2ms.runtime, sam2ms.metrics, sam2ms.preprocess, sam2ms.data, sam2ms.export, sam2ms.calib;"
            "bad = [m for m in ('torch', 'torchvision', 'sam2') if m in sys.modules];"
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_console_script_reports_errors_without_traceback(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "sam2ms.cli", "eval", "--ckpt", str(tmp_path / "x.pt"),
                           "--data", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and str(tmp_path) in proc.stderr
