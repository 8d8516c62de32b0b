"""Layering (ARCHITECTURE.md): web routes and CLI commands parse input, call one service
and render; they never query tables themselves (issue 7, point 15).

An import-linter style check with ``ast``: no module under ``src/tocsin/web/`` or
``src/tocsin/cli/`` imports SQLAlchemy, the session helpers of ``tocsin.core.db`` or
the mapped tables (``tocsin.<area>.models``) at run time, at module level or inside a
function. Imports under ``if TYPE_CHECKING:`` (type names) are allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "tocsin"
LAYERS = ("web", "cli")
SESSION_HELPERS = {"transaction", "read_transaction", "session_factory", "Session", "table"}


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Line numbers of statements inside ``if TYPE_CHECKING:`` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def forbidden_imports(source: str) -> list[str]:
    """The forbidden imports in ``source``, as ``"line N: what"``."""
    tree = ast.parse(source)
    allowed = _type_checking_only(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in allowed:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy" or _is_models(alias.name):
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            names = {a.name for a in node.names}
            if module.split(".")[0] == "sqlalchemy" or _is_models(module):
                found.append(f"line {node.lineno}: from {module} import {', '.join(names)}")
            elif module == "tocsin.core.db" and names & SESSION_HELPERS:
                found.append(f"line {node.lineno}: from tocsin.core.db import "
                             f"{', '.join(sorted(names & SESSION_HELPERS))}")
            elif module == "tocsin" and "models" in names:
                found.append(f"line {node.lineno}: from tocsin import models")
    return found


def _is_models(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "tocsin" and parts[-1] == "models"


def test_the_check_finds_what_it_forbids() -> None:
    bad = ("import sqlalchemy as sa\n"
           "from tocsin.core.db import read_transaction, get_engine\n"
           "def f():\n    from tocsin.campaigns.models import Campaign\n"
           "from typing import TYPE_CHECKING\n"
           "if TYPE_CHECKING:\n    from sqlalchemy.engine import Engine\n")
    assert forbidden_imports(bad) == [
        "line 1: import sqlalchemy",
        "line 2: from tocsin.core.db import read_transaction",
        "line 4: from tocsin.campaigns.models import Campaign",
    ]


@pytest.mark.parametrize("path", sorted(p for layer in LAYERS for p in (SRC / layer).rglob("*.py")),
                         ids=lambda p: str(p.relative_to(SRC)))
def test_web_and_cli_modules_reach_tables_only_through_services(path: Path) -> None:
    found = forbidden_imports(path.read_text(encoding="utf-8"))
    assert not found, (f"{path.relative_to(SRC)} reads tables itself; call a service of the "
                       f"area instead (ARCHITECTURE.md): " + "; ".join(found))
