"""mypy over the package as it installs, so that the imports between the stages are checked.

    python tools/typecheck.py [extra mypy arguments]
    python tools/typecheck.py --program "from sam2ms.runtime.backends import open_model; open_model(1.5)"

Why a wrapper: pyproject.toml maps the top-level folders export/, calib/ and runtime/ to the
packages sam2ms.export, sam2ms.calib and sam2ms.runtime (``package-dir``). mypy has no such
mapping: run on the folders, it names their modules ``runtime.pipeline`` and so on, and an import
of ``sam2ms.runtime.pipeline`` inside export/ finds nothing it can check (an editable install's
import hook is invisible to it) — every cross-stage import became ``Any``. This builds the
installed layout as a tree of symbolic links under ``.typecheck/`` (from ``package-dir``, so it
follows pyproject.toml), runs mypy on the package ``sam2ms`` there plus tests/ and benchmarks/, and
prints mypy's messages with the paths of the files in this checkout. ``--program TEXT`` checks
only that text against the package (how tests/test_typecheck.py proves the seams are seen).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / ".typecheck"
CHECKED_FOLDERS = ("tests", "benchmarks", "tools")  # checked beside the package, by file
THIRD_PARTY = "tests/third_party/"  # others' code kept unchanged as a reference: not ours to type


def package_dirs() -> dict[str, str]:
    """pyproject.toml's ``[tool.setuptools] package-dir``: package name -> folder."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as f:
        return dict(tomllib.load(f)["tool"]["setuptools"]["package-dir"])


def build_tree() -> dict[str, str]:
    """Link every package folder into ``.typecheck/`` at its installed place; the map from the
    links' paths back to the checkout's (longest first).
    """
    shutil.rmtree(TREE, ignore_errors=True)
    mapping = {}
    for package, folder in sorted(package_dirs().items()):
        place = TREE.joinpath(*package.split("."))
        if place.exists() or place.is_symlink():  # a sub-package already linked with its parent
            continue
        place.parent.mkdir(parents=True, exist_ok=True)
        if package == "sam2ms":  # the root package: its own entries, beside the linked stages
            place.mkdir()
            for entry in (ROOT / folder).iterdir():
                if entry.name != "__pycache__":
                    (place / entry.name).symlink_to(entry)
        else:
            place.symlink_to(ROOT / folder, target_is_directory=True)
        mapping[os.path.relpath(place, ROOT) + "/"] = folder.rstrip("/") + "/"
    return dict(sorted(mapping.items(), key=lambda kv: -len(kv[0])))


def main(argv: list[str]) -> int:
    from mypy import api

    mapping = build_tree()
    if argv[:1] == ["--program"]:
        os.environ["MYPYPATH"] = str(TREE)
        stdout, stderr, code = api.run(["-c", *argv[1:]])
        sys.stdout.write(stdout)
        sys.stderr.write(stderr)
        return code
    files = [
        str(p.relative_to(ROOT))
        for folder in CHECKED_FOLDERS
        for p in sorted((ROOT / folder).rglob("*.py"))
        if not p.relative_to(ROOT).as_posix().startswith(THIRD_PARTY)
    ]
    # tests import their helpers (conftest, fakes, fake_tensorrt) by bare name, as pytest puts their folders first
    helpers = sorted({str(Path(f).parent) for f in files if f.startswith(("tests", "tools"))})
    os.environ["MYPYPATH"] = os.pathsep.join([str(TREE), *helpers])
    stdout, stderr, code = api.run(["--explicit-package-bases", str(TREE / "sam2ms"), *files, *argv])
    pattern = re.compile("|".join(re.escape(k) for k in mapping))
    sys.stdout.write(pattern.sub(lambda m: mapping[m.group(0)], stdout))
    sys.stderr.write(stderr)
    return code


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:]))
