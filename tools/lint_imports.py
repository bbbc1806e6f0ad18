"""import-linter over the package as it installs: the layers, the cycles and what importing the
runtime imports (the contracts are in pyproject.toml, ``[tool.importlinter]``).

    python tools/lint_imports.py

Why a wrapper: like mypy (see typecheck.py), import-linter finds ``sam2ms`` by importing it, and
an editable install maps export/, calib/ and runtime/ in through an import hook its graph builder
does not walk; it runs here on the installed layout built by :func:`typecheck.build_tree`.
"""

from __future__ import annotations

import os
import sys

from typecheck import ROOT, TREE, build_tree


def main() -> int:
    from importlinter.cli import lint_imports

    build_tree()
    os.chdir(TREE)  # lint_imports puts the working folder first on sys.path: the linked package, not ./sam2ms
    sys.path.insert(0, str(TREE))
    return lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)


if __name__ == "__main__":
    sys.exit(main())
