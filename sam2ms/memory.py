"""How much memory a step may take, decided before it allocates.

Files from strangers can claim any size in a few bytes of header (a 29 KB PNG that says
200 000 x 200 000 pixels). Whatever is decoded or assembled whole (a Pillow image, a PNG output
mask, a JSON document) is therefore measured against a budget first: half the memory available
now, unless the user raises the limit explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UsageError


def available_bytes() -> int:
    """Memory available to a new allocation now: Linux's MemAvailable, else the free physical pages."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 40  # no way to tell (not Linux, not POSIX): do not refuse


def budget_bytes() -> int:
    """What one whole-image allocation may take by default: half the available memory."""
    return available_bytes() // 2


def human_bytes(n: float) -> str:
    """``39728447488`` -> ``37.0 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def pixel_limit(bytes_per_pixel: int, max_pixels: int | None) -> int:
    """The most pixels an image of ``bytes_per_pixel`` may have when decoded or assembled whole:
    ``max_pixels`` where the user gave it, else what fits in :func:`budget_bytes`.
    """
    return max_pixels if max_pixels is not None else budget_bytes() // max(bytes_per_pixel, 1)


def check_pixels(what: str, width: int, height: int, bytes_per_pixel: int, max_pixels: int | None, fix: str) -> None:
    """Refuse (UsageError) a ``width`` x ``height`` image that would exceed :func:`pixel_limit`,
    before a byte of it is allocated.
    """
    pixels = width * height
    limit = pixel_limit(bytes_per_pixel, max_pixels)
    if pixels > limit:
        need = human_bytes(pixels * bytes_per_pixel)
        why = (
            f"more than --max-pixels {max_pixels}"
            if max_pixels is not None
            else f"more than half the memory available now ({human_bytes(budget_bytes() * 2)})"
        )
        raise UsageError(f"{what}: {width} x {height} pixels would take {need} in memory, {why}; {fix}")


#: glibc's mallopt parameter number for the arena count (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas before a run's threads start (True where it took effect).

    Each thread that allocates while another holds the main arena gets an arena of its own, and
    an arena keeps the pages of the large arrays freed in it; the pipeline's decode, blend and write
    threads all allocate tile- and row-sized arrays, which raised peak RSS by a quarter (4096²
    scenes: 1.0 GB instead of 0.8) at no gain in speed. Two arenas keep the speed and the memory
    (benchmarks/RESULTS.md). The ``MALLOC_ARENA_MAX`` environment variable, when set, wins.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc
        return False
