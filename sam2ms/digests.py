"""SHA-256 of artifacts, computed once per version of a file and remembered.

A sidecar binds its artifact by size and SHA-256 (:mod:`sam2ms.artifacts`). Hashing a plan of a
gigabyte takes seconds, so a file's digest is kept in the user's cache folder under the file's
identity: its resolved path, device, inode, size, and modification and status-change times in
nanoseconds. A second run then costs one ``stat`` and one small read. Any write, rename or
``chmod`` of the file sets its status-change time (ctime), which no user-level tool can set back
(unlike the modification time that ``tar`` or ``touch`` restore), so a changed file is hashed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from .fileio import write_json


def cache_root() -> Path | None:
    """sam2ms's cache folder: ``$SAM2MS_CACHE_DIR`` (set but empty: no cache), else
    ``$XDG_CACHE_HOME/sam2ms`` (``~/.cache/sam2ms``).
    """
    configured = os.environ.get("SAM2MS_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sam2ms"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The file's SHA-256, read in chunks (checkpoints and plans run to gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _identity(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def cached_sha256(path: str | Path) -> str:
    """:func:`sha256_file`, remembered per version of the file (see the module docstring). An
    unreadable or foreign cache entry is ignored and rewritten; an unwritable cache only costs the
    next run another hash.
    """
    path = Path(path)
    root = cache_root()
    identity = _identity(path)
    entry = root / "digests" / f"{hashlib.sha256(identity.encode()).hexdigest()[:40]}.json" if root else None
    if entry is not None:
        try:
            data = json.loads(entry.read_bytes()) if entry.stat().st_size < 4096 else None
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict) and data.get("identity") == identity and isinstance(data.get("sha256"), str):
            return str(data["sha256"])
    digest = sha256_file(path)
    if entry is not None and _identity(path) == identity:  # unchanged while it was hashed
        with contextlib.suppress(OSError):
            write_json(entry, {"identity": identity, "sha256": digest})
    return digest
