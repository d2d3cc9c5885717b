"""The safety envelope at flow level: each attack is refused with a clear error and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataeng_crew.agents.brains import DeterministicBrain
from dataeng_crew import flow
from dataeng_crew.errors import SqlCheckError, UnsafeArtifactError
from tests.conftest import git
from tests.conftest import open_built

pytestmark = pytest.mark.slow


def _snapshot(repo: Path) -> tuple:
    files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")
                   if ".git" not in p.parts and ".dataeng-crew" not in p.parts)
    return (git(repo, "status", "--porcelain", "--untracked-files=all"), git(repo, "rev-parse", "HEAD"),
            git(repo, "branch", "--list"), files)


class MartBrain(DeterministicBrain):
    """Replaces the mart's SQL (keeping its documented columns in sync) to play an attacker."""

    def __init__(self, sql: str | None = None, columns: list[str] | None = None, folder: str | None = None):
        self.sql, self.columns, self.folder = sql, columns, folder

    def plan(self, request, profile):
        plan = super().plan(request, profile)
        if self.sql and "stg_shop__customers" in self.sql:  # the attacker's mart reads customers: stage them
            plan = plan.model_copy(update={"source_tables": [*plan.source_tables, "customers"]})
        return plan

    def transform(self, plan, profile, staging):
        mart = super().transform(plan, profile, staging)[0]
        update = {}
        if self.sql is not None:
            update["sql"] = self.sql
        if self.columns is not None:
            from dataeng_crew.contracts import ColumnSpec

            update["columns"] = [ColumnSpec(name=c, description=c) for c in self.columns]
            update["contract_enforced"] = False
        if self.folder is not None:
            update["folder"] = self.folder
        return [mart.model_copy(update=update)]


ATTACKS = [
    ("drop", "drop table {{ ref('stg_shop__orders') }}", SqlCheckError, "DROP"),
    ("delete", "delete from {{ ref('stg_shop__orders') }}", SqlCheckError, "DELETE"),
    ("attach", "attach '/tmp/other.duckdb' as other", SqlCheckError, "ATTACH"),
    ("copy_to", "copy (select 1) to '/tmp/out.csv'", SqlCheckError, "COPY"),
    ("install", "install httpfs", SqlCheckError, "INSTALL"),
    ("set_external", "set enable_external_access = true", SqlCheckError, "SET"),
    ("read_text", "select content as n from read_text('/etc/passwd')", SqlCheckError, "read_text"),
    ("two_statements", "select 1 as n; select 2 as n", SqlCheckError, "exactly one statement"),
    ("command", "load httpfs", SqlCheckError, "COMMAND"),
    ("env_var", "select '{{ env_var(\"GITHUB_TOKEN\") }}' as n", SqlCheckError, "only ref(), source() and config()"),
    ("pre_hook", "{{ config(pre_hook=\"drop table x\") }} select 1 as n", SqlCheckError, "hooks"),
]


@pytest.mark.parametrize(("name", "sql", "error", "needle"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_agent_sql_attacks_are_refused_before_anything_runs(git_project, monkeypatch, name, sql, error, needle):
    repo = git_project.parent
    before = _snapshot(repo)
    dbt_calls = []
    monkeypatch.setattr(flow, "run_dbt", lambda *a, **k: dbt_calls.append(a))
    with pytest.raises(error) as info:
        flow.propose("daily_sales mart", project=git_project, brain=MartBrain(sql=sql, columns=["n"]))
    assert needle.lower() in str(info.value).lower()
    assert dbt_calls == []  # nothing was executed
    assert _snapshot(repo) == before  # nothing was written or published


@pytest.mark.parametrize("folder", ["../../outside", "/tmp/abs", "marts/../../../x"])
def test_model_paths_outside_models_are_refused(git_project, folder):
    repo = git_project.parent
    before = _snapshot(repo)
    with pytest.raises(UnsafeArtifactError):
        flow.propose("daily_sales mart", project=git_project, brain=MartBrain(folder=folder))
    assert _snapshot(repo) == before


EXPOSING_SQL = """with

customers as (

    select * from {{ ref('stg_shop__customers') }}

),

final as (

    select
        customer_id,
        email,
        upper(last_name) as shouting_name,
        count(distinct email) over () as customers_with_email

    from customers

)

select * from final
"""


def test_pii_in_a_mart_is_hashed_and_needs_approval(git_project, monkeypatch):
    monkeypatch.setenv("DATAENG_CREW_PII_KEY", "the-users-real-key")  # never reaches the tool's own dbt
    brain = MartBrain(sql=EXPOSING_SQL, columns=["customer_id", "email", "shouting_name", "customers_with_email"])
    proposal = flow.propose("daily_sales mart", project=git_project, brain=brain)
    assert {(e.column, tuple(e.sources), e.action) for e in proposal.exposures} == {
        ("email", ("stg_shop__customers.email",), "hash"),
        ("shouting_name", ("stg_shop__customers.last_name",), "hash"),
    }
    mart = next(m for m in proposal.models if m.layer == "marts")
    assert [c.name for c in mart.columns] == ["customer_id", "email_hash", "shouting_name_hash", "customers_with_email"]
    con = open_built(proposal.warehouse)
    row = con.execute("select email_hash, shouting_name_hash from main.fct_daily_sales limit 1").fetchone()
    cols = [r[0] for r in con.execute("describe main.fct_daily_sales").fetchall()]
    con.close()
    assert "email" not in cols and len(row[0]) == 64 and "@" not in row[0]
    con = open_built(proposal.warehouse)  # keyed: neither the plain hash nor the user's key
    plain = {r[0] for r in con.execute("select sha256(cast(email as varchar)) from main.stg_shop__customers "
                                       "union all select sha256('the-users-real-key' || cast(email as varchar)) "
                                       "from main.stg_shop__customers").fetchall()}
    hashes = {r[0] for r in con.execute("select email_hash from main.fct_daily_sales").fetchall()}
    con.close()
    assert hashes and not hashes & plain
    assert "env_var(\"DATAENG_CREW_PII_KEY\")" in mart.sql
    box = Path(proposal.proposal_dir)
    assert not [p for p in box.rglob("*") if p.is_file() and b"the-users-real-key" in p.read_bytes()]
    assert any("email" in r and "hashed" in r for r in proposal.approvals[0].reasons)
    body = Path(proposal.pr).read_text()
    assert "Needs governance approval" in body and "`fct_daily_sales.email` ←" in body
    customers = next(m for m in proposal.models if m.name == "stg_shop__customers")  # staged: the mart reads it
    tagged = {c.name: c.meta.get("pii_kind") for c in customers.columns if c.meta.get("pii")}
    assert tagged == {"email": "email", "first_name": "person_name", "last_name": "person_name", "phone": "phone",
                      "address1": "street_address"}
    assert "pii" in customers.tags and customers.grants == {"select": ["pii_reader"]}
    for policy in proposal.policies:  # evidence never quotes a value
        assert "@" not in policy.evidence and "555" not in policy.evidence


def test_policy_refuse_blocks_the_proposal(git_project):
    repo = git_project.parent
    (git_project / "governance.yml").write_text("mart_pii_action: refuse\n")
    git(repo, "commit", "-qam", "strict policy")
    before = _snapshot(repo)
    brain = MartBrain(sql=EXPOSING_SQL, columns=["customer_id", "email", "shouting_name", "customers_with_email"])
    with pytest.raises(UnsafeArtifactError, match="exposes restricted data"):
        flow.propose("daily_sales mart", project=git_project, brain=brain)
    assert _snapshot(repo) == before
    report = json.loads(next((repo / ".dataeng-crew" / "proposals").glob("*/report.json")).read_text())
    assert report["status"] == "failed" and report["branch"] is None


def test_policy_drop_removes_the_column(git_project):
    repo = git_project.parent
    (git_project / "governance.yml").write_text("mart_pii_action: drop\n")
    git(repo, "commit", "-qam", "drop policy")
    brain = MartBrain(sql=EXPOSING_SQL, columns=["customer_id", "email", "shouting_name", "customers_with_email"])
    proposal = flow.propose("daily_sales mart", project=git_project, brain=brain, publish="none")
    mart = next(m for m in proposal.models if m.layer == "marts")
    assert [c.name for c in mart.columns] == ["customer_id", "customers_with_email"]
    con = open_built(proposal.warehouse)
    cols = [r[0] for r in con.execute("describe main.fct_daily_sales").fetchall()]
    con.close()
    assert cols == ["customer_id", "customers_with_email"]
