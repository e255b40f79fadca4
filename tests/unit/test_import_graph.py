"""The shape of the code, checked over its import graph (every import statement, those under
`TYPE_CHECKING` and inside functions included): no cycles, the two planes apart, the store
below them and the provisioners, and the sans-IO floors of the data plane free of I/O and
clocks (docs/architecture.md, "The map")."""

from __future__ import annotations

import ast
from pathlib import Path

import redisgate

ROOT = Path(redisgate.__file__).parent
SANS_IO_FLOORS = (
    "redisgate.proxy.wire",
    "redisgate.proxy.commands",
    "redisgate.proxy.policy",
    "redisgate.proxy.http_api",
)
IO_MODULES = frozenset({"asyncio", "asyncpg", "socket", "time", "uvloop", "selectors"})


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports: redisgate ones resolved to the module, others by name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else base)
    return out


GRAPH = {
    name: {imp for imp in _imports(name, path) if imp in MODULES and imp != name}
    for name, path in MODULES.items()
}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read() -> None:
    assert "redisgate.proxy.clients.gateway" in GRAPH
    assert "redisgate.proxy.clients.connection" in GRAPH["redisgate.proxy.clients.gateway"]


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_the_planes_meet_only_below_them() -> None:
    for name, imports in GRAPH.items():
        if name.startswith("redisgate.proxy"):
            assert not {i for i in imports if i.startswith("redisgate.control")}, name
        if name.startswith("redisgate.control"):
            assert not {i for i in imports if i.startswith("redisgate.proxy")}, name


def test_the_store_is_below_the_planes_and_the_provisioners() -> None:
    above = ("redisgate.proxy", "redisgate.control", "redisgate.provision")
    for name, imports in GRAPH.items():
        if name.startswith("redisgate.store"):
            assert not {i for i in imports if i.startswith(above)}, name


def test_the_sans_io_floors_do_no_io() -> None:
    for name, path in MODULES.items():
        if name.startswith(SANS_IO_FLOORS):
            top = {imported.split(".")[0] for imported in _imports(name, path)}
            assert not top & IO_MODULES, name
