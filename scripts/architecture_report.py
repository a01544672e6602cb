"""The design figures of issue 14, measured from the source with `ast`.

    python scripts/architecture_report.py [--json]

Import cycles among `app` modules, `app/services/*` modules importing FastAPI or `app.deps`, private names
(`_x`) imported from another module, modules over 600 lines. `tests/test_architecture.py` asserts them; the
repeated-blocks figure comes from the `duplicates` tool where it is installed (docs/development.md).
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(APP.rglob("*.py"))}


def _resolve(name: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an import-from names (relative imports resolved against `name`)."""
    if not node.level:
        return node.module or ""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, str | None, bool]]:
    """(imported module, imported name or None, at module level?) for each import in the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(n) for n in tree.body}
    # an `if TYPE_CHECKING:` block at module level counts as module level but not as a runtime edge
    found: list[tuple[str, str | None, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((alias.name, None, id(node) in top_level))
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, path, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:  # `from app.services import cases` imports the module itself
                    found.append((sub, None, id(node) in top_level))
                else:
                    found.append((target, alias.name, id(node) in top_level))
    return found


def _type_checking_only(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom) and sub.module:
                    names.add(sub.module)
    return names


def import_graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module-level and function-level imports alike: a function-level import hiding a cycle is still one."""
    graph: dict[str, set[str]] = {n: set() for n in known}
    for name, path in known.items():
        skip = _type_checking_only(path)
        for target, _, _ in imports(name, path, known):
            if target in known and target != name and target not in skip:
                graph[name].add(target)
    # importing `app.a.b` runs `app/a/__init__.py`, but that is not an edge between the modules themselves
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def framework_in_services(known: dict[str, Path]) -> list[str]:
    """`app.services.*` modules importing FastAPI, Starlette or `app.deps` (anywhere in the module)."""
    bad = []
    for name, path in known.items():
        if not name.startswith("app.services."):
            continue
        for target, _, _ in imports(name, path, known):
            root = target.split(".")[0]
            if root in {"fastapi", "starlette"} or target == "app.deps" or target.startswith("app.routers"):
                bad.append(f"{name} imports {target}")
                break
    return bad


def private_imports(known: dict[str, Path]) -> list[str]:
    """Names starting with one underscore imported from another module, and `module._name` attribute uses.
    `_` alone is gettext's conventional name for "translate this" (app.i18n), public by that convention."""
    found = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}  # local name -> app module
        for target, imported, _ in imports(name, path, known):
            if imported and imported.startswith("_") and imported != "_" and not imported.startswith("__") \
                    and target.startswith("app"):
                found.append(f"{name} imports {target}.{imported}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = _resolve(name, path, node)
                for alias in node.names:
                    if f"{base}.{alias.name}" in known:
                        aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in known and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{name} uses {aliases[node.value.id]}.{node.attr}")
    return sorted(set(found))


def long_modules(known: dict[str, Path]) -> list[tuple[str, int]]:
    sizes = [(name, len(path.read_text(encoding="utf-8").splitlines())) for name, path in known.items()]
    return sorted(((n, c) for n, c in sizes if c > MAX_LINES), key=lambda x: -x[1])


def report() -> dict:
    known = modules()
    return {
        "cycles": cycles(import_graph(known)),
        "services_importing_framework": framework_in_services(known),
        "private_imports": private_imports(known),
        "modules_over_600_lines": long_modules(known),
    }


def main() -> None:
    figures = report()
    if "--json" in sys.argv:
        print(json.dumps(figures, indent=2))
        return
    for key, items in figures.items():
        print(f"{key}: {len(items)}")
        for item in items:
            print(f"  {item}")


if __name__ == "__main__":
    main()
