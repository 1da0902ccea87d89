"""The tree is the architecture: docs/architecture.md, sizes, import arrows and SQL homes."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "inventory"
PAGE = ROOT / "docs" / "architecture.md"

MODULE_LINES = 300
FUNCTION_LINES = 40
LONG_FUNCTIONS: dict[str, str] = {
    # "module:function": "the one-line reason it reads better whole",
}
"""The functions allowed over FUNCTION_LINES (at most three), each with its reason."""
FMT_SKIPS = 5

# Which of our packages each package may import. Arrows point inward: the domain imports
# nothing of ours; only the entry points (api, worker, cli) and the composition root
# (wiring) sit on top, and nothing imports them back. `runtime` may use `security` (the
# settings' rate-limit budgets, the first admin `inventory dev` creates), never the reverse.
USE_CASES = {
    "domain",
    "eventstore",
    "service",
    "readmodels",
    "projectors",
    "feed",
    "security",
    "webhooks",
    "imports",
}
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "eventstore": {"domain"},
    "service": {"domain", "eventstore"},
    "readmodels": {"domain", "eventstore"},
    "projectors": {"domain", "eventstore", "readmodels"},
    "feed": {"domain", "readmodels"},
    "security": {"domain", "eventstore"},
    "webhooks": {"domain", "eventstore", "readmodels"},
    "imports": {"domain", "eventstore"},
    "runtime": {"security"},
    "api": USE_CASES | {"runtime"},
    "worker": USE_CASES - {"security"} | {"runtime"},
    "wiring": USE_CASES | {"runtime", "api", "worker"},
    "cli": USE_CASES | {"runtime", "api", "worker", "wiring"},
}
"""Every package may also import `runtime.settings` (the one frozen settings object) except
the pure ones, and the package root (`inventory.__version__`)."""
PURE = {"domain", "eventstore", "security", "readmodels"}

SQL_HOMES = {
    "readmodels",
    "eventstore",
    "projectors",
    "runtime",
    "security",
    "webhooks",
    "imports",
}
"""Where SQL text may live: the read models' own modules, the event store, the projector
engine's tables (checkpoints, stalls), the migrations runner, the identity store, and the
webhook subscriptions and their delivery log, and the imports' jobs and row outcomes."""
SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE"
    r"|ALTER\s+TABLE|BEGIN|COMMIT|SAVEPOINT|ROLLBACK)\b",
    re.DOTALL,
)


def modules() -> Iterator[tuple[str, Path]]:
    """Every module of the package, by dotted name relative to `inventory`."""
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def package(name: str) -> str:
    return name.split(".", maxsplit=1)[0] if name else ""


def runtime_imports(path: Path) -> set[str]:
    """The modules of ours `path` imports at run time (not under `if TYPE_CHECKING:`)."""
    found: set[str] = set()
    skipped = {
        id(child)
        for node in ast.walk(tree(path))
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for block in node.body
        for child in ast.walk(block)
    }
    for node in ast.walk(tree(path)):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(n.removeprefix("inventory.") for n in names if n.startswith("inventory."))
    known = {name for name, _ in modules()}
    return {name for name in found if name in known}


def docstrings(module: ast.Module) -> set[int]:
    """The ids of every docstring node in `module`."""
    owners = [
        module,
        *(
            n
            for n in ast.walk(module)
            if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        ),
    ]
    found = set()
    for owner in owners:
        body = owner.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            found.add(id(body[0].value))
    return found


def test_the_architecture_page_names_every_package_and_top_level_module() -> None:
    page = PAGE.read_text()
    block = re.search(r"```text\nsrc/inventory/\n(.*?)```", page, re.DOTALL)
    assert block, "docs/architecture.md lost its tree of src/inventory/"
    named = set(re.findall(r"^  (\w+(?:\.py)?)/?\s", block.group(1), re.MULTILINE))
    present = {
        path.name
        for path in SOURCE.iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.stem not in {"__init__", "__main__"})
    }
    assert named - present == set(), "docs/architecture.md names what the tree lacks"
    assert present - named == set(), "the tree has what docs/architecture.md does not name"


def test_every_package_in_the_tree_has_its_import_rules() -> None:
    present = {package(name) for name, _ in modules() if name and name != "__main__"}
    assert present - {name.removesuffix(".py") for name in ALLOWED} == set()


def test_modules_stay_under_300_lines() -> None:
    long = {
        name: lines
        for name, path in modules()
        if (lines := len(path.read_text().splitlines())) > MODULE_LINES
    }
    assert long == {}


def test_functions_stay_under_40_lines_but_for_three_named_exceptions() -> None:
    long = {}
    for name, path in modules():
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > FUNCTION_LINES:
                    long[f"{name}:{node.name}"] = lines
    assert len(LONG_FUNCTIONS) <= 3
    assert set(long) - set(LONG_FUNCTIONS) == set(), long
    assert set(LONG_FUNCTIONS) - set(long) == set(), "an exception no longer needed"


def test_format_skips_are_rare() -> None:
    skips = sum(path.read_text().count("# fmt: skip") for _, path in modules())
    assert skips <= FMT_SKIPS


def test_packages_import_only_inward() -> None:
    wrong = set()
    for name, path in modules():
        own = package(name)
        if own in {"", "__main__"}:
            continue
        for imported in runtime_imports(path):
            other = package(imported)
            if other in {own, ""}:
                continue
            if imported == "runtime.settings" and own not in PURE:
                continue
            if other not in ALLOWED[own]:
                wrong.add(f"{name} -> {imported}")
    assert wrong == set()


def test_no_module_imports_itself_back() -> None:
    graph = {name: runtime_imports(path) - {name} for name, path in modules()}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for other in sorted(graph.get(node, ())):
            if state.get(other) == 1:
                cycles.append([*trail[trail.index(other) :], other])
            elif other not in state:
                visit(other, [*trail, other])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_sql_text_lives_only_in_its_homes() -> None:
    strays = []
    for name, path in modules():
        if package(name) in SQL_HOMES:
            continue
        module = tree(path)
        skip = docstrings(module)
        strays.extend(
            f"{name}:{node.lineno}"
            for node in ast.walk(module)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skip
            and SQL.search(node.value)
        )
    assert strays == []
