"""Everyday use in a real project: propose, merge, propose again; a flat project; the project's own tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dataeng_crew import flow
from dataeng_crew.tools import sandbox
from dataeng_crew.tools.dbt_runner import run_dbt
from tests.conftest import git
from tests.project_fixtures import JAFFLE_DUCKDB, commit_all, cwd, dbt_here
from tests.conftest import open_built

pytestmark = pytest.mark.slow


def _fresh_clone_builds(repo: Path, project_rel: str, warehouse: Path, tmp: Path, name: str) -> int:
    """Clone ``repo`` at main, build it with dbt against a copy of ``warehouse``; the models built."""
    clone = tmp / "clone"
    git(tmp, "clone", "-q", str(repo), str(clone))
    db = tmp / "wh" / warehouse.name
    db.parent.mkdir()
    shutil.copyfile(warehouse, db)
    profiles = sandbox.write_sandbox_profile(tmp, name, db)
    result = run_dbt(["build"], clone / project_rel, profiles, target_path=tmp / "target", log_path=tmp / "logs")
    assert result.success, [(n.unique_id, n.message) for n in result.failed_nodes]
    return sum(n.resource_type == "model" for n in result.nodes)


def test_propose_merge_propose_again_every_build_green(git_project, tmp_path):
    """The second proposal once the first is merged: the merged mart's tests (they read staging the new build
    selects) are not selected without the mart, so nothing fails on a table the sandbox did not build."""
    repo = git_project.parent
    for request in ("daily_sales mart", "weekly sales mart", "customers mart with lifetime value"):
        proposal = flow.propose(request, project=git_project, publish="local")
        assert proposal.status == "published" and proposal.checks.build.success, request
        git(repo, "merge", "-q", "--ff-only", proposal.branch)
    built = _fresh_clone_builds(repo, "dbt_project", git_project / "warehouse" / "shop.duckdb", tmp_path, "shop")
    assert built >= 7  # three marts, their staging and the intermediate model, all from main


def test_a_flat_project_is_planned_on_its_models(tmp_path):
    """Every model in one folder: layers come from lineage (a model no other reads is a mart; one reading only
    seeds is a building block), so requests are planned on the project's models instead of refused."""
    project = tmp_path / "flat"
    project.mkdir()
    shutil.copytree(JAFFLE_DUCKDB / "seeds", project / "seeds")
    (project / "dbt_project.yml").write_text(
        "name: flat\nprofile: flat\nconfig-version: 2\nversion: '1.0'\nmodel-paths: [models]\nseed-paths: [seeds]\n")
    (project / "profiles.yml").write_text(
        "flat:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: flat.duckdb\n      threads: 1\n")
    (project / "models").mkdir()
    (project / "models" / "orders.sql").write_text(
        "select id as order_id, user_id as customer_id, order_date, status from {{ ref('raw_orders') }}\n")
    (project / "models" / "payments.sql").write_text(
        "select id as payment_id, order_id, payment_method, amount / 100.0 as amount from {{ ref('raw_payments') }}\n")
    (project / "models" / "order_totals.sql").write_text(
        "select o.order_id, o.order_date, sum(p.amount) as amount\nfrom {{ ref('orders') }} as o\n"
        "left join {{ ref('payments') }} as p on p.order_id = o.order_id\ngroup by 1, 2\n")
    (project / ".gitignore").write_text("target/\nlogs/\n*.duckdb\n.dataeng-crew/\n")
    commit_all(project)
    assert dbt_here(project, "seed").success
    with cwd(project):
        proposal = flow.propose("monthly orders", project=project, publish="local")
    assert proposal.status == "published" and proposal.checks.build.success
    mart = next(m for m in proposal.models if m.layer == "marts")
    # built on the project's models (the order_totals mart holds every order), not restaged from the seed
    assert "ref('orders')" in mart.sql or "ref('order_totals')" in mart.sql
    assert "raw_orders" not in mart.sql
    assert not any(m.layer == "staging" for m in proposal.models)
    con = open_built(proposal.warehouse)
    got = con.execute(f"select sum(order_count) from main.{mart.name}").fetchone()[0]
    truth = con.execute("select count(*) from main.raw_orders").fetchone()[0]
    con.close()
    assert got == truth == 99


def test_personal_data_read_from_the_projects_own_model_is_masked_in_the_mart(tmp_path):
    """Governance follows lineage, not folders: the project's stg_customers holds names; a customers mart built on
    it must not ship them raw (it did: the PR said masked while first_name and last_name were plain)."""
    from tests.project_fixtures import jaffle_duckdb

    project = jaffle_duckdb(tmp_path / "jaffle")
    # without the project's own customers mart (which already answers this request), the mart reads stg_customers
    (project / "models" / "customers.sql").unlink()
    schema = yaml.safe_load((project / "models" / "schema.yml").read_text())
    schema["models"] = [m for m in schema["models"] if m["name"] != "customers"]
    (project / "models" / "schema.yml").write_text(yaml.safe_dump(schema, sort_keys=False))
    commit_all(project)
    with cwd(project):
        proposal = flow.propose("customers mart with lifetime value", project=project, publish="none")
    mart = next(m for m in proposal.models if m.layer == "marts")
    names = [c.name for c in mart.columns]
    assert "first_name" not in names and "last_name" not in names and "first_name_hash" in names
    assert {(e.column, tuple(e.sources)) for e in proposal.exposures} >= {("first_name", ("stg_customers.first_name",))}
    con = open_built(proposal.warehouse)
    raw = {r[0] for r in con.execute("select first_name from main.raw_customers").fetchall()}
    shipped = {str(v) for row in con.execute(f"select * from main.{mart.name}").fetchall() for v in row}
    con.close()
    assert not raw & shipped  # no raw name anywhere in the mart
    assert any(a.kind == "governance" for a in proposal.approvals)
