"""One run per output folder: an exclusive lock file that the kernel releases with its process.

Two ``sam2ms-infer ... -o SAME`` runs would redo each other's scenes and remove each other's
temporary files. The first takes ``flock`` on ``OUT/.sam2ms.lock`` and writes its pid (and host)
there; a second finds the lock held and stops with exit 2, naming the holder. A run that died
(even by ``kill -9``) holds nothing any more, so its lock file is stale and simply taken over.
``flock`` works on local file systems and on NFS (Linux emulates it with POSIX byte-range locks).
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from types import TracebackType

from .errors import UsageError

LOCK_NAME = ".sam2ms.lock"


class FolderLock:
    """``with FolderLock(out):`` holds ``out``'s lock for the run; the file is removed on release."""

    def __init__(self, folder: str | Path, flag: str = "-o") -> None:
        self.path = Path(folder) / LOCK_NAME
        self.flag = flag
        self._fd: int | None = None
        self.stale_holder: str | None = None  # the dead run whose lock file was taken over (the summary says)

    def __enter__(self) -> FolderLock:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                raise UsageError(
                    f"{self.flag} {self.path.parent}: another sam2ms run ({holder or 'unknown pid'}) is "
                    "writing there; wait for it to finish, or choose another output folder"
                ) from None
            # The holder before us may have removed the file between our open and our lock: then
            # we hold a lock on a file nobody else will see; start again with the current one.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.stale_holder = _read(fd) or None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: nobody can take it in between
        os.close(self._fd)
        self._fd = None


def _read(fd: int) -> str:
    return os.pread(fd, 200, 0).decode(errors="replace").strip()
