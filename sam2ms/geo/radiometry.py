"""One radiometric conversion from any raster to the model's uint8 RGB, for every stage.

Real imagery is 11/12/16-bit, float reflectance, single-band or many-band (SpaceNet PS-RGB and
PS-MS, WorldView, Pléiades, Sentinel-2); the model was trained on 8-bit RGB. Training, calibration
and the runtime all read rasters through :mod:`sam2ms.geo.rasters`, which calls :meth:`Stretch.apply`
here, so the bytes that reach the model are made by one function whatever the stage.

A conversion has two forms:

* :class:`Radiometry` — what was asked for (``--bands``, ``--stretch``, ``--scale``, ``--stats``);
  portable, recorded in checkpoints, sidecars and JSON summaries, so a deployment repeats the
  conversion its model was trained with.
* :class:`Stretch` — that request resolved for one scene: which bands, and per band the raw values
  that map to 0 and 255. Percentile and min/max stretches are estimated per scene from a decimated
  read (GDAL answers it from the overviews when the file has them), never from the whole scene.

``out = clip(rint((x - low) * 255 / (high - low)), 0, 255)`` per band; 8-bit data with no stretch
passes through untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import UsageError

STRETCHES = ("auto", "none", "percentile", "minmax", "fixed")
DEFAULT_PERCENTILES = (2.0, 98.0)
SAMPLE_SIDE = 1024  # long side of the decimated read a per-scene stretch is estimated from
STATS_FORMAT = "sam2ms-stats"

# (bands, max side) -> (C x h x w raw values, h x w valid mask or None): a decimated read.
Sampler = Callable[[tuple[int, ...], int], tuple[np.ndarray, "np.ndarray | None"]]


@dataclass(frozen=True)
class Stretch:
    """A conversion resolved for one scene: 1-based ``bands`` (one band is repeated to RGB) and
    per band the raw ``low``/``high`` mapped to 0/255; ``low`` None passes 8-bit data through.
    """

    bands: tuple[int, ...]
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Raw ``C x h x w`` values of :attr:`bands` (as read) -> uint8 ``h x w x 3`` RGB."""
        if self.low is None or self.high is None:
            rgb = data.astype(np.uint8, copy=False)
        else:
            low = np.asarray(self.low, np.float64).reshape(-1, 1, 1)
            scale = 255.0 / (np.asarray(self.high, np.float64).reshape(-1, 1, 1) - low)
            x = (data.astype(np.float32) - low.astype(np.float32)) * scale.astype(np.float32)
            np.nan_to_num(x, copy=False, nan=0.0)
            rgb = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        if rgb.shape[0] == 1:
            rgb = np.repeat(rgb, 3, axis=0)
        return np.ascontiguousarray(np.moveaxis(rgb, 0, -1))

    def as_dict(self) -> dict[str, Any]:
        """The stretch as sidecars and checkpoints record it."""
        return {
            "bands": list(self.bands),
            "low": None if self.low is None else [float(v) for v in self.low],
            "high": None if self.high is None else [float(v) for v in self.high],
        }


@dataclass(frozen=True)
class Radiometry:
    """The conversion asked for. ``bands``: 1-based band indices (3, or 1 repeated to grey RGB;
    None: the bands whose colour interpretation is red/green/blue, else the first three).
    ``stretch``: ``auto`` (none for 8-bit data, percentile otherwise), ``none``, ``percentile``
    (per-band ``percentiles`` of each scene), ``minmax``, or ``fixed`` (``low``/``high``: one value
    for all bands or one per band, from ``--scale`` or a ``sam2ms stats`` file).
    """

    bands: tuple[int, ...] | None = None
    stretch: str = "auto"
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    def validate(self) -> Radiometry:
        """This object, once its fields are consistent; a UsageError naming the flag otherwise."""
        if self.stretch not in STRETCHES:
            raise UsageError(f"--stretch {self.stretch}: use one of {', '.join(STRETCHES)}")
        if self.bands is not None and (len(self.bands) not in (1, 3) or any(b < 1 for b in self.bands)):
            raise UsageError(
                f"--bands {','.join(map(str, self.bands))}: give three 1-based band indices "
                "(e.g. 3,2,1) or one (repeated as grey)"
            )
        lo, hi = self.percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise UsageError(f"--percentiles {lo:g},{hi:g}: need 0 <= LOW < HIGH <= 100")
        if self.stretch == "fixed":
            if self.low is None or self.high is None or len(self.low) != len(self.high):
                raise UsageError("a fixed stretch needs --scale LOW:HIGH or --stats FILE")
            if len(self.low) not in (1, len(self.bands or (0, 0, 0))):
                raise UsageError(
                    f"a fixed stretch for {len(self.low)} band(s) does not fit the bands chosen; "
                    "make --stats for the same --bands"
                )
            if any(h <= lo for lo, h in zip(self.low, self.high)):
                raise UsageError("a fixed stretch needs HIGH > LOW for every band (--scale LOW:HIGH)")
        elif self.low is not None or self.high is not None:
            raise UsageError(f"--stretch {self.stretch} takes no fixed LOW:HIGH; drop --scale/--stats or the --stretch")
        return self

    def as_dict(self) -> dict[str, Any]:
        """The radiometry as sidecars and checkpoints record it."""
        return {
            "bands": None if self.bands is None else list(self.bands),
            "stretch": self.stretch,
            "percentiles": list(self.percentiles),
            "low": None if self.low is None else list(self.low),
            "high": None if self.high is None else list(self.high),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Radiometry:
        """The conversion recorded in a checkpoint, sidecar or summary (None: the default)."""
        if not data:
            return cls()

        def tup(key: str) -> Any:
            return None if data.get(key) is None else tuple(data[key])

        return cls(
            bands=tup("bands"),
            stretch=data.get("stretch", "auto"),
            percentiles=tuple(data.get("percentiles", DEFAULT_PERCENTILES)),
            low=tup("low"),
            high=tup("high"),
        ).validate()

    # -- resolving per scene -------------------------------------------------------------------
    def choose_bands(self, path: Path, count: int, colorinterp: Sequence[str]) -> tuple[int, ...]:
        """The bands to read from a raster of ``count`` bands (1-based)."""
        if self.bands is not None:
            beyond = [b for b in self.bands if b > count]
            if beyond:
                raise UsageError(
                    f"{path}: band {beyond[0]} asked for (--bands) but the raster has {count} band(s); "
                    f"choose bands between 1 and {count}"
                )
            return self.bands
        names = [c.lower() for c in colorinterp]
        if all(c in names for c in ("red", "green", "blue")):
            return tuple(names.index(c) + 1 for c in ("red", "green", "blue"))
        colour = [i + 1 for i, c in enumerate(names) if c != "alpha"] or list(range(1, count + 1))
        if len(colour) >= 3:
            return tuple(colour[:3])
        if len(colour) == 1:
            return (colour[0],)
        raise UsageError(
            f"{path}: {len(colour)} bands and none marked red/green/blue; pass --bands with three band "
            "indices (or one, for grey)"
        )

    def resolve(self, path: Path, count: int, dtype: str, colorinterp: Sequence[str], sample: Sampler) -> Stretch:
        """This conversion for one scene; ``sample`` reads the decimated pixels a per-scene stretch needs."""
        bands = self.choose_bands(path, count, colorinterp)
        stretch = self.stretch
        if stretch == "auto":
            stretch = "none" if dtype == "uint8" else "percentile"
        if stretch == "none":
            if dtype != "uint8":
                raise UsageError(
                    f"{path}: {dtype} pixels cannot go to the model unstretched; use --stretch "
                    "percentile (or minmax), --scale LOW:HIGH or --stats FILE"
                )
            return Stretch(bands)
        if stretch == "fixed":
            n = len(bands)
            low, high = self.low or (), self.high or ()
            if len(low) not in (1, n):
                raise UsageError(
                    f"{path}: the fixed stretch has {len(low)} values for {n} band(s); "
                    "make --stats for the same --bands"
                )
            return Stretch(bands, tuple(low) * (n // len(low)), tuple(high) * (n // len(high)))
        values = valid_values(*sample(bands, SAMPLE_SIDE))
        if values.shape[1] == 0:
            raise UsageError(
                f"{path}: no valid pixels (all nodata in a decimated read); check its nodata value or "
                "mask, or pass --scale LOW:HIGH"
            )
        q = self.percentiles if stretch == "percentile" else (0.0, 100.0)
        low_a, high_a = np.percentile(values, q, axis=1)
        return Stretch(bands, *ordered(low_a, high_a))


def valid_values(data: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """``C x N`` raw values of the valid, finite pixels of a ``C x h x w`` read."""
    flat = data.reshape(data.shape[0], -1).astype(np.float64)
    keep = np.all(np.isfinite(flat), axis=0)
    if valid is not None:
        keep &= valid.reshape(-1)
    return flat[:, keep]


def ordered(low: np.ndarray, high: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-band (low, high) with high > low: a constant band maps to 0 instead of dividing by 0."""
    low = np.asarray(low, np.float64)
    high = np.where(np.asarray(high) > low, high, low + 1.0)
    return tuple(float(v) for v in low), tuple(float(v) for v in high)


def decimation(height: int, width: int, side: int) -> int:
    """The step that brings the longer side of a raster down to at most ``side`` pixels."""
    return max(1, math.ceil(max(height, width) / side))


# -- command-line form ------------------------------------------------------------------------------
def parse_bands(text: str) -> tuple[int, ...]:
    """``--bands 4,3,2`` -> (4, 3, 2); a UsageError for anything else."""
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        raise UsageError(f"--bands {text}: give comma-separated 1-based band indices, e.g. 3,2,1") from None


def parse_pair(text: str, flag: str, sep: str) -> tuple[float, float]:
    """``LO<sep>HI`` -> (lo, hi) for ``flag``; a UsageError for anything else."""
    try:
        lo, hi = (float(v) for v in text.split(sep))
    except ValueError:
        raise UsageError(f"{flag} {text}: give two numbers as LOW{sep}HIGH") from None
    return lo, hi


def from_flags(
    bands: str | None,
    stretch: str | None,
    percentiles: str | None,
    scale: str | None,
    stats: Path | None,
    default: Radiometry | None = None,
) -> Radiometry:
    """The conversion the command-line asks for; flags not given keep ``default`` (e.g. what the
    model was trained with), or the built-in default.
    """
    base = default or Radiometry()
    if scale is not None and stats is not None:
        raise UsageError("--scale and --stats both fix the stretch; pass one of them")
    if not any(v is not None for v in (bands, stretch, percentiles, scale, stats)):
        return base.validate()
    chosen = parse_bands(bands) if bands is not None else None
    if stats is not None:
        data = read_stats(stats)
        if chosen is not None and chosen != tuple(data["bands"]):
            raise UsageError(
                f"--stats {stats}: made for bands {','.join(map(str, data['bands']))}, not "
                f"{','.join(map(str, chosen))}; run sam2ms stats with the same --bands"
            )
        return Radiometry(
            bands=tuple(data["bands"]), stretch="fixed", low=tuple(data["low"]), high=tuple(data["high"])
        ).validate()
    if scale is not None:
        lo, hi = parse_pair(scale, "--scale", ":")
        return Radiometry(
            bands=chosen if chosen is not None else base.bands, stretch="fixed", low=(lo,), high=(hi,)
        ).validate()
    out = replace(base, bands=chosen if chosen is not None else base.bands)
    if stretch is not None:
        out = replace(out, stretch=stretch, low=None, high=None)
    if percentiles is not None:
        out = replace(out, percentiles=parse_pair(percentiles, "--percentiles", ","))
    return out.validate()


def read_stats(path: Path) -> dict[str, Any]:
    """A ``sam2ms stats`` file, checked."""
    from ..fileio import read_format_json
    from ..schema import integer, json_value, list_of, number, record, validate

    fix = "make it with sam2ms stats DATA -o stats.json"
    data = read_format_json(path, STATS_FORMAT, f"--stats {path}", fix)
    values = list_of(number(), min_len=1, max_len=3)
    data = validate(
        data,
        record(
            {"bands": list_of(integer(1, 1 << 16), min_len=1, max_len=3), "low": values, "high": values},
            required=("bands", "low", "high"),
            other=json_value(),
        ),
        f"--stats {path}",
        fix,
    )
    if not len(data["low"]) == len(data["bands"]) == len(data["high"]):
        raise UsageError(f"--stats {path}: bands, low and high do not match; make it again with sam2ms stats")
    return cast("dict[str, Any]", data)
