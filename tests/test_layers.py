"""Imports point inward: api → services → {domain, db, tasks.queue}; tasks → {db, providers}; domain → ∅."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lbaas"

# package -> lbaas packages it must never import
FORBIDDEN = {
    "domain": ("lbaas.db", "lbaas.services", "lbaas.api", "lbaas.tasks", "lbaas.providers", "lbaas.cli"),
    "db": ("lbaas.services", "lbaas.api", "lbaas.cli"),
    "services": ("lbaas.api", "lbaas.cli", "lbaas.providers"),
    "tasks": ("lbaas.services", "lbaas.api", "lbaas.cli"),
    "providers": ("lbaas.db", "lbaas.services", "lbaas.api", "lbaas.tasks", "lbaas.cli"),
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layer_imports(package: str) -> None:
    bad = []
    for path in sorted((SRC / package).rglob("*.py")):
        for name in imports_of(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[package]):
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    assert not bad, "\n".join(bad)
