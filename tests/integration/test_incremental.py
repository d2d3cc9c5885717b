"""Incremental event marts: an incremental run after new and late-arriving raw rows equals a full refresh.

Real dbt on the proposal's sandbox: the mart is built by `propose`, raw rows are appended to the
warehouse (which the sandbox reads through views), `dbt build` runs incrementally, then `--full-refresh`
rebuilds from scratch.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from dataeng_crew import flow
from tests.conftest import SAMPLE_PROJECT
from dataeng_crew.tools.dbt_runner import run_dbt

pytestmark = pytest.mark.slow
MART = "fct_daily_payments"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("incremental")
    db = tmp / "billing.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create schema raw_billing")
    con.execute("""create table raw_billing.payments as select
        range + 1 as id,
        timestamp '2032-03-01' + (range * 7 % 30) * interval 1 day + (range % 24) * interval 1 hour as paid_at,
        100 + range * 13 % 5000 as amount,
        (['card', 'bank'])[range % 2 + 1] as payment_method
        from range(400)""")
    con.close()
    project = tmp / "project"
    shutil.copytree(SAMPLE_PROJECT, project, ignore=shutil.ignore_patterns("warehouse", "target", "logs"))
    policy = project / "governance.yml"
    policy.write_text(policy.read_text() + "incremental_above_rows: 100\nincremental_lookback_periods: 2\n")
    proposal = flow.propose("daily payments", project=project, warehouse=db, publish="none")
    return proposal, Path(proposal.proposal_dir) / "sandbox", db


def _mart(db: str) -> list[tuple]:
    con = duckdb.connect(db, read_only=True)
    try:
        return con.execute(f"select * from main.{MART} order by 1").fetchall()
    finally:
        con.close()


def _append(db: Path, rows: list[tuple[int, str, int]]) -> None:
    con = duckdb.connect(db)
    con.executemany("insert into raw_billing.payments values (?, cast(? as timestamp), ?, 'card')", rows)
    con.close()


def _build(sandbox: Path, *extra: str):  # noqa: ANN202
    return run_dbt(["build", "--select", MART, *extra], sandbox / "project", sandbox / "profiles",
                   target_path=sandbox / "target", log_path=sandbox / "logs", write_json=False)


def test_plan_and_sql_are_incremental(built):
    proposal, _, _ = built
    mart = next(m for m in proposal.models if m.name == MART)
    assert mart.materialization == "incremental" and proposal.plan.incremental_lookback == 2
    assert "unique_key='event_date'" in mart.sql and "{% if is_incremental() %}" in mart.sql
    assert "max(event_date) - interval 2 day from {{ this }}" in mart.sql
    assert any("incremental" in i for i in proposal.plan.interpretations)
    assert proposal.checks.build.success


def test_incremental_run_equals_full_refresh_with_late_rows(built):
    proposal, sandbox, raw = built
    db = proposal.warehouse
    before = {r[0]: r for r in _mart(db)}
    last = max(before)
    assert str(last) == "2032-03-30"
    # two new days (one empty day between) and a late row in an already-built day inside the lookback window
    _append(raw, [(10_001, "2032-04-01 10:00", 1234), (10_002, "2032-04-02 11:00", 500),
                 (10_003, "2032-03-29 23:00", 777)])
    incremental = _build(sandbox)
    assert incremental.success, incremental.failed_nodes
    after_incremental = _mart(db)
    by_day = {r[0]: r for r in after_incremental}
    assert str(max(by_day)) == "2032-04-02" and by_day[max(by_day)][1] == 1
    assert [r for d, r in by_day.items() if str(d) == "2032-03-31"][0][1] == 0  # empty day filled
    late_day = [d for d in by_day if str(d) == "2032-03-29"][0]
    assert by_day[late_day][1] == before[late_day][1] + 1  # the late row counted
    full = _build(sandbox, "--full-refresh")
    assert full.success, full.failed_nodes
    assert _mart(db) == after_incremental


def test_rows_older_than_the_lookback_need_a_full_refresh(built):
    """Proves the is_incremental() filter is live: a row far in the past is not picked up incrementally."""
    proposal, sandbox, raw = built
    db = proposal.warehouse
    before = _mart(db)
    _append(raw, [(10_004, "2032-03-02 09:00", 999)])
    run = _build(sandbox)
    assert _mart(db) == before  # the model ran incrementally and left that old day alone …
    assert [n.status for n in run.nodes if n.resource_type == "model"] == ["success"]
    # … and the generated reconciliation test is what notices the missed row
    assert {n.test_name for n in run.failed_nodes} == {"crew_reconciles_with"}
    assert _build(sandbox, "--full-refresh").success
    changed = [(a, b) for a, b in zip(before, _mart(db)) if a != b]
    assert len(changed) == 1 and str(changed[0][1][0]) == "2032-03-02" and changed[0][1][1] == changed[0][0][1] + 1
