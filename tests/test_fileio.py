import os
from pathlib import Path

import pytest

from sam2ms.fileio import atomic_write, write_json

pytestmark = pytest.mark.core  # runs without torch: make test-core


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = write_json(tmp_path / "a.json", {"v": 1})
    before = target.read_bytes()

    def boom(f: object) -> None:
        f.write(b"partial")  # type: ignore[attr-defined]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temp file left


def test_atomic_write_uses_normal_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_json(tmp_path / "b.json", {})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
