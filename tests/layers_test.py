"""The package's layers, lowest first: a module imports only its own or lower rows.

This is the layer table of the design notes, checked on every module's imports
(those inside functions and under TYPE_CHECKING too), so that the map cannot drift
from the code unnoticed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "colmena_fx"

#: (row, module prefixes), lowest first.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("exceptions", "models", "schema", "serialize", "units", "limits",
              "rundir", "timers", "taskcontext", "__version__")),
    ("data schemas and stores", ("data.schemas", "data.policy", "data.stores",
                                 "data")),
    ("config", ("config", "configfiles", "clocksetting", "clockplan",
                "methodroute")),
    ("worker shim", ("worker", "executable")),
    ("data manager", ("data.holds", "data.manager", "data.check")),
    ("journal", ("journal", "records", "taskstore", "replay", "runfiles",
                 "runlog")),
    ("latency", ("latency",)),
    ("endpoint", ("endpoint",)),
    ("transports", ("transports",)),
    ("federation", ("routing", "dispatch", "resume", "healthhub", "topics", "delivery",
                    "taskrequest", "federation")),
    ("thinker", ("thinker",)),
    ("colmena compatibility", ("colmena",)),
    ("tools", ("live", "probe", "report", "sitefiles")),
    ("command line", ("cli",)),
]  # fmt: skip
#: Rows that must stay importable without the rest: only core below them.
CORE_ONLY = {"thinker"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _row(module: str) -> int:
    """The row of `module` (relative to the package), by its longest prefix."""
    matches = [
        (len(prefix), index)
        for index, (_name, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"colmena_fx.{module} is in no row of the layer table"
    return max(matches)[1]


def _imports(path: Path) -> set[str]:
    """Every colmena_fx module `path` imports, relative to the package."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "colmena_fx":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("colmena_fx."):
                found.add(node.module.removeprefix("colmena_fx."))
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.removeprefix("colmena_fx.")
                for alias in node.names
                if alias.name.startswith("colmena_fx.")
            )
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or
                 p.parent != PACKAGE)  # fmt: skip


@pytest.mark.parametrize("path", MODULES, ids=_module_name)
def test_no_module_imports_a_higher_layer(path: Path) -> None:
    module = _module_name(path)
    row = _row(module)
    upward = sorted(
        f"{imported} ({LAYERS[_row(imported)][0]})"
        for imported in _imports(path)
        if _row(imported) > row
    )
    assert not upward, f"{module} ({LAYERS[row][0]}) imports upward: {upward}"
    if LAYERS[row][0] in CORE_ONLY:
        beside = [m for m in _imports(path) if _row(m) not in (0, row)]
        assert not beside, f"{module} may import only core modules, not {beside}"


def test_every_module_is_in_the_table() -> None:
    for path in MODULES:
        _row(_module_name(path))
