"""Every module of lbaas imports only the layers below it (the picture in docs/architecture.md).

The rule is an allow-list per package (or top-level module): a new package must be
given its place here before it can exist, and nothing imports a layer above it.
``api`` and ``cli`` are the two composition roots: they build the database,
provider and worker, so they may reach every layer below them, but neither
imports the other's commands and nothing below imports them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lbaas"

# package (or top-level module) -> the lbaas packages/modules it may import besides itself
BASE = {"errors", "clock"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "clock": set(),
    "config": set(),
    "files": set(),
    "certs": {"errors", "files"},
    "domain": {"errors"},
    "accesslogs": BASE | {"db", "files"},
    "db": BASE | {"domain", "files"},
    "providers": BASE | {"domain", "config"},
    "services": BASE | {"domain", "db", "certs"},
    "tasks": BASE | {"domain", "db", "providers", "certs"},
    # The emulator's controls (reset, faults, timing, journal, snapshots) sit beside the services;
    # only the composition roots and the pytest plugin use them.
    "emulator": BASE | {"domain", "db", "tasks", "providers", "config", "__init__"},
    "api": BASE
    | {
        "domain",
        "db",
        "services",
        "tasks",
        "providers",
        "certs",
        "config",
        "accesslogs",
        "emulator",
        "__init__",
    },
    "first_start": {"config", "db", "services", "files"},
    "cli": BASE
    | {
        "domain",
        "db",
        "services",
        "tasks",
        "providers",
        "certs",
        "config",
        "api",
        "first_start",
        "accesslogs",
        "emulator",
    },
    "testing": {"api", "config"},  # the pytest plugin starts the app in-process
    "__main__": {"cli"},
    "__init__": set(),
}


def layer_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def lbaas_imports(path: Path) -> set[str]:
    """The lbaas packages/modules a file imports: ``lbaas.db.tables`` counts as ``db``."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + (
                [f"{node.module}.{a.name}" for a in node.names] if node.module == "lbaas" else []
            )
        for name in names:
            parts = name.split(".")
            if parts[0] != "lbaas":
                continue
            if len(parts) == 1:
                continue
            target = parts[1]
            out.add("__init__" if target == "__version__" else target)
    return out


FILES = sorted(SRC.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    unknown = {layer_of(p) for p in FILES} - set(ALLOWED)
    assert not unknown, f"give these a place in ALLOWED (and in docs/architecture.md): {unknown}"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_point_down(layer: str) -> None:
    bad = []
    for path in FILES:
        if layer_of(path) != layer:
            continue
        for target in lbaas_imports(path) - {layer}:
            if target not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(SRC)} imports lbaas.{target}")
    assert not bad, "\n".join(bad)


def test_no_cycles_between_layers() -> None:
    edges = {layer: set() for layer in ALLOWED}
    for path in FILES:
        edges[layer_of(path)] |= lbaas_imports(path) - {layer_of(path)}
    seen: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if seen.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join([*trail, node]))
        if seen.get(node) == 2:
            return
        seen[node] = 1
        for nxt in sorted(edges.get(node, ())):
            visit(nxt, [*trail, node])
        seen[node] = 2

    for layer in sorted(edges):
        visit(layer, [])
