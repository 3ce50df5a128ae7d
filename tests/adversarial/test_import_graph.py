"""The layers hold: reads never import the verbs, the storage engine knows no domain module, nothing
below the web and the CLI imports them, and no two packages import each other.

Read from the source with `ast`: every import statement of every module of registry/ and
pipelines/, lazy ones (inside a function) included (a dependency is one wherever it is written),
relative ones resolved; importing a module also imports its parent packages. A module breaks a rule
if anything it reaches breaks it: the failure names the chain of imports, file and line, that gets
there. A fresh interpreter then imports each layer for real and looks at `sys.modules`, so that an
import no statement shows (importlib, a plugin) is caught too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("registry", "pipelines")

READS = "registry.reads"
VERBS = "registry.operations"
STORAGE = ("registry.ledger", "registry.blobs")
DOMAIN = ("registry.model", "registry.layout", "registry.audit", "registry.reads", "registry.operations",
          "registry.web", "registry.cli")
# What serves and what is run: the web app, the CLI, the server, and schemas.py (a generator run by
# hand that reads the API's types). Everything else is below them.
TOP = ("registry.web", "registry.cli", "registry.server", "registry.__main__",
       "registry.schemas")


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int  # 0: a parent package, imported with its module

    def __str__(self) -> str:
        if not self.line:
            return f"{self.importer} is in package {self.imported}"
        path = _modules()[self.importer].relative_to(ROOT)
        return f"{self.importer} imports {self.imported} ({path}:{self.line})"


@cache
def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


@cache
def _imports(module: str) -> tuple[Import, ...]:
    """The modules of ours that ``module`` imports, wherever in it, and its parent packages."""
    path = _modules()[module]
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:  # (`from . import x`: x is a module, or a name in the package)
                found.append(Import(module, f"{base}.{alias.name}" if f"{base}.{alias.name}" in _modules() else base,
                                    node.lineno))
    parts = module.split(".")
    found += [Import(module, ".".join(parts[:i]), 0) for i in range(1, len(parts))]
    return tuple(i for i in found if i.imported.split(".")[0] in PACKAGES)


def _within(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _reach(start: str, banned: tuple[str, ...]) -> list[Import] | None:
    """The chain of imports from ``start`` to a module of ``banned``, if there is one."""
    came: dict[str, Import | None] = {start: None}
    todo = deque([start])
    while todo:
        module = todo.popleft()
        for step in _imports(module):
            if step.imported in came or step.imported not in _modules():
                continue
            came[step.imported] = step
            if _within(step.imported, *banned):
                chain, at = [], step
                while at is not None:
                    chain.append(at)
                    at = came[at.importer]
                return chain[::-1]
            todo.append(step.imported)
    return None


def _layer(*prefixes: str) -> list[str]:
    return [m for m in _modules() if _within(m, *prefixes)]


def _breaches(layer: list[str], banned: tuple[str, ...]) -> list[str]:
    """Each import that crosses into ``banned`` from ``layer``, with the shortest chain to it."""
    shortest: dict[Import, list[Import]] = {}
    for module in layer:
        if (chain := _reach(module, banned)) and len(chain) < len(shortest.get(chain[-1], chain + [chain[-1]])):
            shortest[chain[-1]] = chain
    return [str(chain[0]) if len(chain) == 1 else
            f"{chain[-1]}, reached from {chain[0].importer}:\n      " + "\n      ".join(map(str, chain))
            for chain in shortest.values()]


def _imported_for_real(layer: list[str]) -> list[str]:
    """Every module of ours in `sys.modules` once every module of ``layer`` is imported, in a fresh
    interpreter (what runs when they are imported, whatever the source looks like)."""
    wanted = [m for m in layer if not m.endswith("__main__")]
    script = ("import importlib, json, sys\n"
              f"for name in {wanted!r}:\n    importlib.import_module(name)\n"
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('registry', 'pipelines'))))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_reads_never_import_the_verbs():
    breaches = _breaches(_layer(READS), (VERBS,))
    assert not breaches, "reads are below the verbs; these reach registry.operations:\n" + "\n".join(breaches)
    loaded = [m for m in _imported_for_real(_layer(READS)) if _within(m, VERBS)]
    assert not loaded, f"importing registry.reads loads {loaded}"


def test_the_storage_engine_knows_no_domain_module():
    breaches = _breaches(_layer(*STORAGE), DOMAIN)
    assert not breaches, ("the ledger and the blob store store paths and bytes; these reach what they mean:\n"
                          + "\n".join(breaches))
    loaded = [m for m in _imported_for_real(_layer(*STORAGE)) if _within(m, *DOMAIN)]
    assert not loaded, f"importing registry.ledger and registry.blobs loads {loaded}"


def test_nothing_below_imports_the_web_or_the_cli():
    below = [m for m in _modules() if not _within(m, *TOP)]
    breaches = _breaches(below, TOP)
    assert not breaches, "the web, the CLI and the server are on top; these import them from below:\n" + "\n".join(
        breaches)
    loaded = [m for m in _imported_for_real(below) if _within(m, *TOP)]
    assert not loaded, f"importing everything below the web and the CLI loads {loaded}"


def _unit(module: str) -> str:
    """What a circle is counted between: registry's packages and root modules, and pipelines."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "registry" and len(parts) > 1 else parts[0]


def test_no_two_packages_import_each_other():
    edges: dict[str, dict[str, Import]] = {}
    for module in _modules():
        for step in _imports(module):
            if step.imported in _modules() and step.line and _unit(module) != _unit(step.imported):
                edges.setdefault(_unit(module), {}).setdefault(_unit(step.imported), step)
    for start in sorted(edges):  # (a walk from each: a circle through it comes back to it)
        came: dict[str, tuple[str, Import] | None] = {start: None}
        todo = deque([start])
        while todo:
            unit = todo.popleft()
            for target, step in sorted(edges.get(unit, {}).items()):
                if target == start:
                    chain, at = [step], unit
                    while (back := came[at]) is not None:
                        at, how = back
                        chain.append(how)
                    raise AssertionError(f"A circle of imports through {start}: each package below imports the "
                                         f"next, the last {start}:\n    " + "\n    ".join(map(str, chain[::-1])))
                if target not in came:
                    came[target] = (unit, step)
                    todo.append(target)
