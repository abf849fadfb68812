"""The code's shape, as the README's module table describes it: what differs by database lives
in the dialects (and the loader's backends), no module imports one that imports it back, and
none grows past 450 lines."""

from __future__ import annotations

import ast
from pathlib import Path

SOURCE = Path(__file__).parent.parent / "src" / "coursemart"
DATABASE_NAMES = frozenset({"sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql"})
#: Where a database's name may be tested: the packages that own what differs.
OWNERS = ("warehouse/dialects/", "load/backends/")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = ("coursemart", *path.relative_to(SOURCE).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def name_tests(tree: ast.AST) -> list[int]:
    """Lines that compare something with a database's name (``==``, ``!=``, ``in``)."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        for side in (node.left, *node.comparators):
            literals = side.elts if isinstance(side, ast.Tuple | ast.Set | ast.List) else [side]
            if any(
                isinstance(item, ast.Constant) and item.value in DATABASE_NAMES for item in literals
            ):
                lines.append(node.lineno)
    return lines


def test_no_module_outside_the_dialects_tests_a_database_name() -> None:
    found = {
        f"{path.relative_to(SOURCE)}:{line}"
        for path in modules().values()
        if not str(path.relative_to(SOURCE)).startswith(OWNERS)
        for line in name_tests(ast.parse(path.read_text()))
    }
    assert found == set()


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project's modules that ``name`` imports, at any level (functions included), but for
    those imported only for type checking."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return found & known


def test_no_module_imports_one_that_imports_it_back() -> None:
    found = modules()
    graph = {name: imports(name, path, set(found)) for name, path in found.items()}
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        for other in sorted(graph[name]):
            if other in trail:
                cycles.append([*trail[trail.index(other) :], other])
            elif other not in done:
                visit(other, [*trail, other])
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []


#: A module past this many lines holds more than one thing (the README's module table names
#: what each holds).
MAX_LINES = 450


def test_no_module_is_over_450_lines() -> None:
    long = {
        str(path.relative_to(SOURCE)): lines
        for path in modules().values()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
