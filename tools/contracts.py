"""An import-linter contract the built-in ones cannot state: what importing a module imports.

grimp's graph holds every import statement, also those inside functions, which run only when
called. The deployment promise is narrower and stronger: ``import sam2ms.runtime`` (and the core it
stands on) must not import torch — an optional backend may import it when it is asked for. This
contract follows only the imports that run at import time (module level and class bodies, not
functions, not ``if TYPE_CHECKING:``), through every module they reach, and reports the chain to a
forbidden package.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from typing import cast

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _import_time_names(tree: ast.Module, module: str, is_package: bool) -> Iterator[str]:
    """Absolute names of what ``module``'s import-time statements import."""
    package = module if is_package else module.rpartition(".")[0]

    def visit(body: list[ast.stmt]) -> Iterator[str]:
        for node in body:
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    anchor = ".".join(parts[: len(parts) - node.level + 1])
                    base = f"{anchor}.{base}" if base else anchor
                yield base
                yield from (f"{base}.{alias.name}" for alias in node.names)  # a submodule, or a name (ignored)
            elif isinstance(node, ast.If):
                test = ast.unparse(node.test)
                if "TYPE_CHECKING" not in test:
                    yield from visit(node.body)
                yield from visit(node.orelse)
            elif isinstance(node, (ast.Try, ast.With, ast.ClassDef)):
                for block in ("body", "handlers", "orelse", "finalbody"):
                    for part in getattr(node, block, []):
                        yield from visit(part.body if isinstance(part, ast.ExceptHandler) else [part])

    yield from visit(tree.body)


class ImportTimeContract(Contract):
    """``source_modules`` (and their submodules) never import ``forbidden_modules`` while being
    imported. Options: source_modules, forbidden_modules (top-level names, e.g. torch).
    """

    type_name = "import_time"

    source_modules = fields.ListField(subfield=fields.StringField())
    forbidden_modules = fields.ListField(subfield=fields.StringField())

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        # fields become lists when the contract is built from its configuration
        forbidden = set(cast("list[str]", self.forbidden_modules))
        source_modules = cast("list[str]", self.source_modules)
        edges: dict[str, set[str]] = {}
        for module in graph.modules:
            spec = importlib.util.find_spec(module)
            if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
                continue
            with open(spec.origin, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            names = set(_import_time_names(tree, module, spec.submodule_search_locations is not None))
            targets = set()
            for name in names:
                if name.split(".")[0] in forbidden:
                    targets.add(name.split(".")[0])
                elif name in graph.modules:  # importing a.b.c runs a and a.b first
                    parts = name.split(".")
                    targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
            edges[module] = targets - {module}
        broken = []
        sources = [m for m in sorted(graph.modules) if any(m == s or m.startswith(s + ".") for s in source_modules)]
        for source in sources:
            chain = self._chain(source, edges, forbidden)
            if chain:
                broken.append(chain)
        return ContractCheck(kept=not broken, metadata={"chains": broken})

    @staticmethod
    def _chain(source: str, edges: dict[str, set[str]], forbidden: set[str]) -> list[str] | None:
        """The shortest import-time chain from ``source`` to a forbidden package, if any."""
        parents: dict[str, str | None] = {source: None}
        frontier = [source]
        while frontier:
            nxt = []
            for module in frontier:
                for target in sorted(edges.get(module, ())):
                    if target in parents:
                        continue
                    parents[target] = module
                    if target in forbidden:
                        chain = [target]
                        while parents[chain[-1]] is not None:
                            chain.append(parents[chain[-1]])  # type: ignore[arg-type]
                        return chain[::-1]
                    nxt.append(target)
            frontier = nxt
        return None

    def render_broken_contract(self, check: ContractCheck) -> None:
        for chain in check.metadata["chains"]:
            output.print_error(f"{chain[0]} imports {chain[-1]} when imported:", bold=True)
            output.print_error("    " + " -> ".join(chain))
            output.new_line()
