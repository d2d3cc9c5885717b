"""The inventory of a project whose parse inputs did not change is read back, not parsed again; any change to a
file, the profile or an environment variable the project reads makes dbt parse it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataeng_crew.tools import project_inventory as pi


def _project(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: tiny\nversion: '1.0'\nprofile: tiny\nconfig-version: 2\n"
                                          "vars:\n  region: \"{{ env_var('TINY_REGION', 'eu') }}\"\n")
    (root / "profiles.yml").write_text(f"tiny:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
                                       f"      path: '{root / 'tiny.duckdb'}'\n")
    (root / "models" / "orders.sql").write_text("select 1 as order_id")
    return root


@pytest.fixture()
def counted(monkeypatch):
    calls: list[list[str]] = []
    real = pi.run_dbt

    def run_dbt(args, *a, **k):  # noqa: ANN001, ANN202
        calls.append(args)
        return real(args, *a, **k)

    monkeypatch.setattr(pi, "run_dbt", run_dbt)
    return calls


def test_an_unchanged_project_is_not_parsed_again(tmp_path, counted, monkeypatch):
    monkeypatch.delenv("TINY_REGION", raising=False)
    project, cache = _project(tmp_path / "p"), tmp_path / "cache"
    first = pi.project_inventory(project, project, tmp_path / "w1", cache=cache)
    second = pi.project_inventory(project, project, tmp_path / "w2", cache=cache)
    assert second == first and [m.name for m in second.models] == ["orders"]
    assert counted == [["parse"]]


@pytest.mark.parametrize("change", ["model file", "new file", "profile", "environment variable"])
def test_any_parse_input_that_changed_parses_again(tmp_path, counted, monkeypatch, change):
    monkeypatch.delenv("TINY_REGION", raising=False)
    project, cache = _project(tmp_path / "p"), tmp_path / "cache"
    pi.project_inventory(project, project, tmp_path / "w1", cache=cache)
    if change == "model file":
        (project / "models" / "orders.sql").write_text("select 1 as order_id, 2 as amount")
    elif change == "new file":
        (project / "models" / "customers.sql").write_text("select 1 as customer_id")
    elif change == "profile":
        (project / "profiles.yml").write_text((project / "profiles.yml").read_text() + "      threads: 2\n")
    else:
        monkeypatch.setenv("TINY_REGION", "us")
    again = pi.project_inventory(project, project, tmp_path / "w2", cache=cache)
    assert counted == [["parse"], ["parse"]]
    if change == "new file":
        assert sorted(m.name for m in again.models) == ["customers", "orders"]


def test_an_unreadable_cached_inventory_is_parsed_again(tmp_path, counted):
    project, cache = _project(tmp_path / "p"), tmp_path / "cache"
    pi.project_inventory(project, project, tmp_path / "w1", cache=cache)
    for cached in cache.glob("inventory-*.json"):
        cached.write_text("{not json")
    assert [m.name for m in pi.project_inventory(project, project, tmp_path / "w2", cache=cache).models] == ["orders"]
    assert counted == [["parse"], ["parse"]]
