"""Atomic file writing: nothing already written is lost or left half-written.

Every artifact (checkpoints, images, JSON) is written to a temporary file in the target folder
and renamed over the final name, which is atomic on POSIX file systems.
"""

from __future__ import annotations

import glob
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from .errors import WriteFailed


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fileobj)`` on a temp file beside ``path``, then rename it to ``path``."""
    f = staged_file(path)
    try:
        write(f)
    except BaseException as exc:
        abort_staged(f)
        if isinstance(exc, OSError):
            raise _write_failed(Path(path), exc) from exc
        raise
    return commit_staged(f, path)


def staged_file(path: str | Path) -> IO[bytes]:
    """A new temp file beside ``path`` (``.NAME.*.tmp``, which ``--resume`` clears after a crash),
    open for writing; :func:`commit_staged` moves it into place, :func:`abort_staged` drops it. For
    outputs written piece by piece (:mod:`sam2ms.png_writer`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates 0600; give the final file the permissions a plain open() would.
    os.fchmod(fd, 0o666 & ~_umask())
    f = open(tmp, "wb")  # noqa: SIM115 - handed to the caller: committed or aborted there
    os.close(fd)
    return f


def commit_staged(f: IO[bytes], path: str | Path) -> Path:
    """Flush, sync and close a :func:`staged_file`, then rename it to ``path``."""
    path = Path(path)
    try:
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(f.name, path)
    except OSError as exc:
        abort_staged(f)
        raise _write_failed(path, exc) from exc
    return path


def abort_staged(f: IO[bytes]) -> None:
    """Close and remove a :func:`staged_file` (the output path is never touched)."""
    with suppress(OSError):
        f.close()
    Path(f.name).unlink(missing_ok=True)


def _write_failed(path: Path, exc: OSError) -> WriteFailed:
    return WriteFailed(
        f"{path}: could not write it ({exc.strerror or exc}); nothing was left half-written: free "
        "some space or choose another folder"
    )


TEMP_SUFFIXES = (".tmp", ".stage.tif")  # atomic_write's and the COG writer's staging files


def leftover_temps(path: Path) -> list[Path]:
    """Temporary files that an interrupted write of ``path`` left beside it (``.NAME.*.tmp``,
    ``.NAME.*.stage.tif``): a run killed with ``kill -9`` gets no chance to remove them.
    """
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.glob(f".{glob.escape(path.name)}.*") if p.name.endswith(TEMP_SUFFIXES))


def ensure_writable_dir(folder: str | Path, flag: str = "-o") -> Path:
    """Create ``folder`` if needed and prove it is writable, or raise a UsageError naming ``flag``."""
    from .errors import UsageError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or exc
        raise UsageError(f"{flag} {folder}: cannot write there ({reason}); choose another folder") from None
    return folder


@contextmanager
def new_folder_removed_on_failure(folder: str | Path) -> Iterator[None]:
    """Run the body; if it fails and ``folder`` did not exist before it and is still empty, remove
    it: a refused export (a foreign checkpoint, a bad opset) leaves no empty output folder behind.
    """
    folder = Path(folder)
    existed = folder.exists()
    try:
        yield
    except BaseException:
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    payload = (json.dumps(data, indent=2, sort_keys=False, default=str) + "\n").encode()
    return atomic_write(path, lambda f: f.write(payload))


def read_format_json(
    path: str | Path, expected_format: str, what: str, fix: str, max_bytes: int = 64 << 20
) -> dict[str, Any]:
    """Read a JSON document (at most ``max_bytes``, no NaN: :func:`sam2ms.schema.load_json`) whose
    ``format`` field must be ``expected_format``; anything else is a UsageError that starts with
    ``what`` and ends with ``fix``.
    """
    from .errors import UsageError
    from .schema import load_json

    data = load_json(path, what, fix, max_bytes)
    if not isinstance(data, dict) or data.get("format") != expected_format:
        raise UsageError(f"{what}: not a {expected_format} file; {fix}")
    return data


def save_png(path: str | Path, array: Any) -> Path:
    """Save a uint8 array (H x W or H x W x 3) as PNG, atomically."""
    from PIL import Image

    img = Image.fromarray(array)
    return atomic_write(path, lambda f: img.save(f, format="PNG"))
