"""Imports only go down the layers: cli → flow → agents → tools → contracts/errors/settings.

The same rule as the workplace's ``layers.py`` check, kept in the suite so CI fails on an upward import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RANK = {"face": 4, "flow": 3, "roles": 2, "tools": 1, "base": 0}
BASE = (["dataeng_crew", "contracts"], ["dataeng_crew", "errors"], ["dataeng_crew", "settings"])


def layer(module: str) -> str | None:
    """The layer of a dotted module name of this project (None for third-party modules)."""
    name = module.replace("dataeng_crew.agents", "agents").replace("dataeng_crew.tools", "tools")
    if name == "agents" or name.startswith("agents."):
        return "roles"
    if name == "tools" or name.startswith("tools."):
        return "tools"
    if name.split(".")[:2] in BASE:
        return "base"
    if name == "dataeng_crew.cli":
        return "face"
    if name == "dataeng_crew" or name.startswith("dataeng_crew."):
        return "flow"
    return None


def upward_imports() -> list[str]:
    """Every ``path:line: importer-layer imports module (layer)`` that goes up."""
    found = []
    for folder in ("agents", "tools", "dataeng_crew"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mine = layer(".".join(parts))
            if mine is None:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    other = layer(name)
                    if other and RANK[other] > RANK[mine]:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {mine} imports {name} ({other})")
    return found


@pytest.mark.parametrize(("module", "expected"), [
    ("dataeng_crew.cli", "face"), ("dataeng_crew.flow", "flow"), ("dataeng_crew.agents.planner", "roles"),
    ("dataeng_crew.tools.warehouse", "tools"), ("dataeng_crew.contracts", "base"), ("duckdb", None),
])
def test_layer_of_a_module(module, expected):
    assert layer(module) == expected


def test_no_import_goes_up_the_layers():
    assert upward_imports() == []
