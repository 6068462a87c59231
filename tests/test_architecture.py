"""The layering of the package, checked on the imports of every module (no module is imported here).

``cim`` is the floor; ``engine`` and ``protocol`` stand on it and not on each other; ``wsman_server``
joins engine and codec; ``client`` reaches the engine only through the ``Server`` object it hands to
its local transport, never its internals; ``cli`` (and the demo) sit on top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "openmi"

# Which top-level parts of openmi each part may import ("openmi" itself: the version string).
ALLOWED = {
    "cim": {"cim"},
    "protocol": {"cim", "protocol"},
    "engine": {"cim", "engine"},
    "client": {"cim", "protocol", "client", "openmi"},
    "wsman_server": {"cim", "protocol", "engine", "wsman_server", "openmi"},
}
# The one door from the client into the engine: the Server class (Application makes the default one).
CLIENT_ENGINE_NAMES = {("openmi.engine.server", "Server"), ("openmi.engine", "Server")}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, str | None, int]]:
    """(absolute module, imported name or None, line) for every import of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, None, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                full = f"{module}.{alias.name}"
                # "from . import requests" imports a module: judge it by its full name
                target = full if (SRC.parent / Path(*full.split("."))).with_suffix(".py").exists() or \
                    (SRC.parent / Path(*full.split("."))).is_dir() else module
                out.append((target, alias.name, node.lineno))
    return out


def _part(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "openmi":
        return None
    return parts[1] if len(parts) > 1 else "openmi"


def _files(part: str) -> list[Path]:
    return sorted((SRC / part).rglob("*.py"))


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_layer_imports_only_what_is_below_it(part: str) -> None:
    files = _files(part)
    assert files
    wrong = []
    for path in files:
        for module, name, line in _imports(path):
            other = _part(module)
            if other is None or other in ALLOWED[part]:
                continue
            if part == "client" and (module, name) in CLIENT_ENGINE_NAMES:
                continue
            wrong.append(f"{path.relative_to(SRC)}:{line} imports {module}" + (f" ({name})" if name else ""))
    assert not wrong, "\n".join(wrong)


def test_the_client_reaches_the_engine_only_through_server() -> None:
    seen = {(module, name) for path in _files("client") for module, name, _ in _imports(path)
            if _part(module) == "engine"}
    assert seen <= CLIENT_ENGINE_NAMES, seen
    assert seen, "the client makes the default embedded Server"


def test_the_checker_sees_a_violation() -> None:
    # the rule is only worth something if the scan resolves relative imports: engine code seen from here
    engine_imports = {m for p in _files("engine") for m, _, _ in _imports(p)}
    assert "openmi.cim.requests" in engine_imports
    assert "openmi.engine.context" in engine_imports
