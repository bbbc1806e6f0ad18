"""What an INPUT argument names, resolved to the rasters to read and the output name of each.

* a raster file, or a folder of them (recursively; sub-folders mirrored under the output);
* a path GDAL reads: ``/vsis3/bucket/key.tif``, ``/vsigs/...``, ``/vsiaz/...``, ``/vsicurl/URL``,
  or the URL forms ``s3://``, ``gs://``, ``http(s)://`` (turned into the GDAL form; credentials
  and endpoints come from GDAL's own configuration, e.g. ``AWS_*`` variables);
* ``@list.txt``: one of the above per line (``#`` comments and blank lines skipped; relative
  paths are relative to the list's folder);
* a STAC Item or ItemCollection (``.json``): for each item, the asset ``stac_asset`` names (or
  the item's only raster asset), written under the item's id.

No STAC client is needed for this: items are JSON, and their hrefs are paths or URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ..errors import UsageError
from ..schema import load_json
from .rasters import RASTER_SUFFIXES, find_inputs, gdal_path, is_virtual

URL_SCHEMES = {
    "s3://": "/vsis3/",
    "gs://": "/vsigs/",
    "az://": "/vsiaz/",
    "http://": "/vsicurl/http://",
    "https://": "/vsicurl/https://",
}
RASTER_MEDIA = ("image/tiff", "image/jp2", "image/png", "image/jpeg", "application/x-vrt")


@dataclass(frozen=True)
class Input:
    """One raster to read (``path``: a local file or a GDAL virtual path) and its outputs' base
    name relative to the output folder (``name``: ``sub/scene`` -> ``OUT/sub/scene.mask.png``).
    """

    path: Path
    name: Path

    @property
    def virtual(self) -> bool:
        """Whether the input is read through GDAL's virtual file systems (a URL, /vsis3/, ...)."""
        return is_virtual(self.path)


def _virtual(source: str) -> Path | None:
    """The GDAL form of a URL or /vsi path; None for anything else."""
    for scheme, prefix in URL_SCHEMES.items():
        if source.startswith(scheme):
            return Path(prefix + source[len(scheme) :])
    return Path(source) if is_virtual(source) else None


def _one(entry: str, base: Path, stac_asset: str | None) -> list[Input]:
    """The inputs of one name (a file, folder, GDAL path or STAC JSON), relative to ``base``."""
    virtual = _virtual(entry)
    if virtual is not None:
        if virtual.suffix.lower() not in RASTER_SUFFIXES:
            raise UsageError(f"{entry}: not a raster name ({', '.join(RASTER_SUFFIXES)}); name a file, not a prefix")
        return [Input(virtual, Path(virtual.stem))]
    path = base / entry  # an absolute entry stays itself
    if path.suffix.lower() == ".json" and path.is_file():
        return _stac(path, stac_asset)
    if path.is_dir():
        return [Input(p, p.relative_to(path).with_suffix("")) for p in find_inputs(path)]
    return [Input(p, Path(p.stem)) for p in find_inputs(path)]


def _stac(path: Path, key: str | None) -> list[Input]:
    """The inputs of a STAC document. Its hrefs are followed (naming rasters is what the document is
    for, and the user named it as INPUT); its item ids only name outputs, made safe as file names.
    """
    doc = load_json(path, str(path), "pass a STAC Item or ItemCollection", max_bytes=256 << 20)
    items = doc.get("features") if isinstance(doc, dict) and doc.get("type") == "FeatureCollection" else [doc]
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("assets"), dict) for i in items):
        raise UsageError(f"{path}: not a STAC Item or ItemCollection (features with 'assets')")
    inputs = []
    for item in items:
        asset = _asset(path, item, key)
        href = asset.get("href") if isinstance(asset, dict) else None
        if not isinstance(href, str) or not href or "\0" in href:
            raise UsageError(f"{path}: item {str(item.get('id'))[:60]!r}: its asset has no href string; fix the item")
        located = _virtual(href) or (
            Path(href[len("file://") :]) if href.startswith("file://") else path.parent / href
        )  # an absolute href stays itself
        inputs.append(Input(located, Path(_file_name(str(item.get("id") or located.stem)))))
    return inputs


def _file_name(text: str) -> str:
    """An item id as an output name: word characters, dots and dashes, never a hidden or parent
    name (``../x`` -> ``_.._x``).
    """
    name = re.sub(r"[^\w.-]", "_", text)[:200]
    return "_" + name if name.startswith(".") or not name else name


def _asset(path: Path, item: dict[str, Any], key: str | None) -> dict[str, Any]:
    """The item's asset named ``key``, or its only raster asset."""
    assets = item["assets"]
    if key is not None:
        if key not in assets:
            raise UsageError(
                f"{path}: item {str(item.get('id'))[:60]!r} has no asset {key!r} (it has "
                f"{', '.join(map(str, assets))[:200]}); "
                "choose one with --stac-asset"
            )
        return cast("dict[str, Any]", assets[key])
    rasters = [
        k
        for k, a in assets.items()
        if isinstance(a, dict)
        and (
            str(a.get("type", "")).split(";")[0].strip() in RASTER_MEDIA
            or Path(str(a.get("href", ""))).suffix.lower() in RASTER_SUFFIXES
        )
    ]
    if len(rasters) != 1:
        raise UsageError(
            f"{path}: item {str(item.get('id'))[:60]!r} has {len(rasters) or 'no'} raster assets "
            f"({(', '.join(rasters) or ', '.join(assets))[:200]}); choose one with --stac-asset"
        )
    return cast("dict[str, Any]", assets[rasters[0]])


def names_one_raster(source: str | Path) -> bool:
    """``source`` names a single raster (not a folder, list or STAC document): its failure is a
    usage error (exit 2), where one input among many only fails itself.
    """
    text = str(source)
    if text.startswith("@"):
        return False
    return _virtual(text) is not None or (Path(text).is_file() and Path(text).suffix.lower() != ".json")


def input_folders(source: str | Path) -> list[Path]:
    """The local folders ``source`` names, itself or in its ``@list`` (an output folder must not be
    one of them, nor lie inside one: its outputs would be read as inputs by the next run).
    """
    text = str(source)
    if text.startswith("@"):
        listing = Path(text[1:])
        try:
            lines = listing.read_text().splitlines()
        except OSError:
            return []  # resolve_inputs says why
        entries = [listing.parent / line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    else:
        entries = [Path(text)]
    return [e for e in entries if _virtual(str(e)) is None and e.is_dir()]


def resolve_inputs(source: str | Path, stac_asset: str | None = None) -> list[Input]:
    """Every input ``source`` names (see the module docstring), each with a distinct output name."""
    text = str(source)
    if text.startswith("@"):
        listing = Path(text[1:])
        try:
            lines = listing.read_text().splitlines()
        except OSError as exc:
            raise UsageError(f"{listing}: cannot read the input list ({exc.strerror})") from None
        entries = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        if not entries:
            raise UsageError(f"{listing}: the input list names no inputs")
        inputs = [i for entry in entries for i in _one(entry, listing.parent, stac_asset)]
    else:
        inputs = _one(text, Path("."), stac_asset)
    inputs = list(dict.fromkeys(inputs))  # a scene listed twice runs once
    names: dict[Path, Path] = {}
    for i in inputs:
        other = names.setdefault(i.name, i.path)
        if other != i.path:
            raise UsageError(
                f"{gdal_path(other)} and {gdal_path(i.path)} would write the same outputs "
                f"({i.name}); rename one of them"
            )
    return inputs
