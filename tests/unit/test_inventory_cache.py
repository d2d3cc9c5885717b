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


def test_a_profile_is_read_back_only_while_the_warehouse_and_project_are_unchanged(tmp_path, monkeypatch):
    import duckdb

    from dataeng_crew.tools.sandbox import mirror_warehouse

    warehouse = tmp_path / "wh" / "shop.duckdb"
    warehouse.parent.mkdir()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema raw")
        con.execute("create table raw.orders as select i as id, i % 3 as customer_id from range(100) t(i)")
    calls: list[Path] = []
    real = pi.project_profile
    monkeypatch.setattr(pi, "project_profile", lambda db, *a, **k: calls.append(db) or real(db, *a, **k))
    inventory, cache = pi.ProjectInventory(name="shop"), tmp_path / "cache"

    def profile(key: str = "k1"):  # noqa: ANN202 - a new sandbox each time, as every proposal has
        box = mirror_warehouse(warehouse, tmp_path / f"box{len(list(tmp_path.glob('box*')))}")
        return box, pi.cached_project_profile(box, inventory, cache, key)

    box1, first = profile()
    box2, second = profile()
    assert len(calls) == 1 and second.tables == first.tables and second.path == str(box2.resolve())
    profile("k2")  # the project changed
    assert len(calls) == 2
    with duckdb.connect(str(warehouse)) as con:  # the warehouse changed
        con.execute("insert into raw.orders values (100, 1)")
    _, third = profile()
    assert len(calls) == 3 and third.table("orders").row_count == 101
