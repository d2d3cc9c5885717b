"""Enforced model contracts and DDL artifacts for five dialects."""

from __future__ import annotations


import duckdb
import pytest

from dataeng_crew.agents.brains import DeterministicBrain
from dataeng_crew import flow
from dataeng_crew.errors import BuildError
from tests.conftest import git
from dataeng_crew.tools.ddl import DIALECTS, parse_back
from tests.conftest import open_built

pytestmark = pytest.mark.slow


def test_mart_contract_is_enforced_with_constraints(published):
    proposal, repo, *_ = published
    con = open_built(proposal.warehouse)
    constraints = con.execute("select constraint_type, constraint_column_names from duckdb_constraints() "
                              "where table_name = 'fct_daily_sales'").fetchall()
    con.close()
    kinds = {(kind, tuple(cols)) for kind, cols in constraints}
    assert ("PRIMARY KEY", ("sales_date",)) in kinds and ("NOT NULL", ("net_sales",)) in kinds
    yml = git(repo, "show", f"{proposal.branch}:dbt_project/models/marts/fct_daily_sales.yml")
    assert "enforced: true" in yml and "type: primary_key" in yml


def test_ddl_only_for_the_target_dialect_by_default(published):
    proposal, *_ = published
    assert [f for f in proposal.files if "/ddl/" in f] == ["dbt_project/ddl/duckdb/fct_daily_sales.sql"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ddl_for_every_dialect_parses_back_with_the_contracted_columns(published, dialect):
    from dataeng_crew.tools.ddl import ddl_files

    proposal, repo, *_ = published
    mart = next(m for m in proposal.models if m.layer == "marts")
    sql = ddl_files([mart], [dialect])[f"ddl/{dialect}/fct_daily_sales.sql"]  # what `--ddl DIALECT` commits
    columns = parse_back(sql, dialect)
    assert [c for c, _ in columns] == [c.name for c in mart.columns]
    assert "NOT NULL" in sql and "PRIMARY KEY (sales_date)" in sql
    assert ("COMMENT" in sql) or ("description=" in sql)
    types = dict(columns)
    assert types["sales_date"] == "DATE"
    assert types["order_count"] == ("INT64" if dialect == "bigquery" else "BIGINT")


def test_duckdb_ddl_executes_and_keeps_comments(published, tmp_path):
    proposal, repo, *_ = published
    sql = git(repo, "show", f"{proposal.branch}:dbt_project/ddl/duckdb/fct_daily_sales.sql")
    con = duckdb.connect(str(tmp_path / "ddl.duckdb"))
    con.execute(sql)
    rows = con.execute("select column_name, data_type, is_nullable, comment from duckdb_columns() "
                       "where table_name = 'fct_daily_sales' order by column_index").fetchall()
    con.close()
    assert rows[0][:3] == ("sales_date", "DATE", False)
    assert rows[1][1] == "BIGINT" and "Number of orders" in rows[1][3]
    assert rows[-1][0] == "average_order_value" and rows[-1][2] is True


class TypeChangingBrain(DeterministicBrain):
    """Returns order_count as text while the contract says bigint."""

    def transform(self, plan, profile, staging):
        mart = super().transform(plan, profile, staging)[0]
        sql = mart.sql.replace("coalesce(orders_per_period.order_count, 0) as order_count",
                               "cast(coalesce(orders_per_period.order_count, 0) as varchar) as order_count")
        assert sql != mart.sql
        return [mart.model_copy(update={"sql": sql})]


def test_a_contracted_type_change_fails_the_build_with_dbts_contract_error(git_project):
    with pytest.raises(BuildError) as info:
        flow.propose("daily_sales mart", project=git_project, brain=TypeChangingBrain())
    message = str(info.value)
    assert "model.shop.fct_daily_sales" in message and "contract" in message.lower()
    assert git(git_project.parent, "branch", "--list", "dataeng-crew/*") == ""
