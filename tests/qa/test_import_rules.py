"""The layering DESIGN.md fixes, checked on the source: who may import what."""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "milter" / "menshen"

# module (dotted, relative to menshen) -> menshen modules it must not import
FORBIDDEN_INTERNAL: dict[str, tuple[str, ...]] = {
    "model": ("menshen.",),
    "yamlsource": ("menshen.",),
    "clamd": ("menshen.",),
    "spool": ("menshen.",),
    "text": (
        "menshen.config",
        "menshen.policy",
        "menshen.engine",
        "menshen.cli",
        "menshen.composition",
        "menshen.scanners",
        "menshen.extraction",
    ),
    "extraction": (
        "menshen.config",
        "menshen.policy",
        "menshen.engine",
        "menshen.cli",
        "menshen.composition",
        "menshen.scanners",
        "menshen.keywords",
    ),
    "keywords": (
        "menshen.config",
        "menshen.policy",
        "menshen.engine",
        "menshen.cli",
        "menshen.composition",
        "menshen.scanners",
        "menshen.extraction",
    ),
    "scanners": (
        "menshen.config",
        "menshen.policy",
        "menshen.engine",
        "menshen.cli",
        "menshen.composition",
    ),
    "config": (
        "menshen.policy",
        "menshen.engine",
        "menshen.cli",
        "menshen.composition",
        "menshen.scanners",
        "menshen.keywords",
        "menshen.extraction",
    ),
    "policy": (
        "menshen.engine",
        "menshen.cli",
        "menshen.composition",
        "menshen.scanners",
        "menshen.keywords",
        "menshen.extraction",
    ),
    "engine": ("menshen.cli", "menshen.composition"),
    "composition": ("menshen.cli",),
    # Operations: the milter's observers and the operators' tools stay out of the daemon.
    "metrics": ("menshen.adapter", "menshen.daemon", "menshen.cli", "menshen.config"),
    "audit": ("menshen.adapter", "menshen.daemon", "menshen.cli", "menshen.metrics"),
    "clientrates": ("menshen.",),
    "printable": ("menshen.",),
    "quarantine": ("menshen.",),
    "stats": ("menshen.adapter", "menshen.daemon", "menshen.cli"),
    # Quotas: counted from the envelope alone; the engine calls them, never the reverse.
    "quota": (
        "menshen.policy",
        "menshen.engine",
        "menshen.cli",
        "menshen.composition",
        "menshen.adapter",
        "menshen.daemon",
        "menshen.scanners",
        "menshen.keywords",
        "menshen.extraction",
        "menshen.metrics",
    ),
    "quotacli": ("menshen.adapter", "menshen.daemon"),
}

# third-party module -> the only menshen modules allowed to import it
OWNED_IMPORTS = {
    "Milter": ("adapter",),
    "milter": ("adapter",),
    "prometheus_client": ("metrics",),
    "redis": ("quota.redis_store",),
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "builtin_wordlists" in path.parts:
            continue
        relative = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in relative.parts if p != "__init__"]
        found.append((".".join(parts), path))
    return found


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = _modules()


@pytest.mark.parametrize(("name", "path"), MODULES, ids=[name or "menshen" for name, _ in MODULES])
def test_layering(name: str, path: Path) -> None:
    imports = _imports(path)
    for prefix, forbidden in FORBIDDEN_INTERNAL.items():
        if name == prefix or name.startswith(prefix + "."):
            bad = sorted(i for i in imports for f in forbidden if i.startswith(f))
            assert not bad, f"menshen.{name} must not import {bad}"
    for third_party, owners in OWNED_IMPORTS.items():
        uses = any(i == third_party or i.startswith(third_party + ".") for i in imports)
        if uses:
            assert name in owners, f"only {owners} may import {third_party}; {name} does"


def test_every_module_starts_with_a_contract_docstring() -> None:
    missing = [
        name or "menshen"
        for name, path in MODULES
        if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not missing


def test_no_package_shadows_pymilters_c_module() -> None:
    # milter/ is the source root; if it became a package, `import milter` would find it
    # instead of pymilter's extension module and `import Milter` would break.
    assert not (PACKAGE.parent / "__init__.py").exists()
    spec = importlib.util.find_spec("milter")
    assert spec is not None and spec.origin is not None
    assert spec.origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), spec.origin
