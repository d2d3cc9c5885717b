"""Quality role: tests and GX suites inferred from the data, proven against it, and triaged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from dataeng_crew.agents.brains import DeterministicBrain
from dataeng_crew import flow
from dataeng_crew.contracts import TestSpec
from tests.conftest import git, make_git_project

pytestmark = pytest.mark.slow


def test_every_model_has_key_tests_and_a_passing_gx_suite(published):
    proposal = published[0]
    for model in proposal.models:
        key = model.columns[0]
        assert {t.name for t in key.tests} >= {"unique", "not_null"}, model.name
    marts = {m.name for m in proposal.models if m.layer == "marts"}
    assert {s.model for s in proposal.suites} == marts  # GX says what dbt's tests cannot: the mart's row floor
    results = {r.model: r for r in proposal.suite_results}
    assert set(results) == marts
    for r in results.values():
        assert r.evaluated >= 1 and r.failed == 0 and r.passed == r.evaluated and r.error is None, r
    kinds = {o.type for r in results.values() for o in r.outcomes}
    assert "expect_table_row_count_to_be_between" in kinds
    repeats = {"expect_column_values_to_be_unique", "expect_column_values_to_not_be_null",
               "expect_column_values_to_be_in_set", "expect_table_columns_to_match_ordered_list"}
    assert not kinds & repeats  # never a fact a dbt test or the contract already checks
    assert proposal.triage == []  # clean data: nothing failed
    body = Path(proposal.pr).read_text()
    evaluated = sum(r.evaluated for r in results.values())
    assert f"Great Expectations: {evaluated}/{evaluated}" in body


def test_generated_tests_cover_ranges_row_counts_freshness_and_reconciliation(published):
    proposal, repo, *_ = published
    tests = {(n.test_name, n.attached_to) for n in proposal.checks.build.nodes if n.resource_type == "test"}
    assert ("crew_reconciles_with", "fct_daily_sales") in tests
    assert not {t for t, _ in tests} & {"crew_expression_is_true", "crew_row_count_between"}  # cannot fail / today's
    assert ("crew_values_at_least", "stg_shop__order_lines") in tests
    assert ("crew_unique_combination", "orders") in tests  # on the source
    assert all(n.status == "pass" for n in proposal.checks.build.nodes if n.resource_type == "test")
    sources = yaml.safe_load(git(repo, "show", f"{proposal.branch}:dbt_project/models/staging/shop/_shop__sources.yml"))
    orders = next(t for t in sources["sources"][0]["tables"] if t["name"] == "orders")
    assert "freshness" not in orders  # the sample's newest load is years old: a check that would only warn
    assert orders["loaded_at_field"] == "_loaded_at"
    staging = yaml.safe_load(git(repo, "show", f"{proposal.branch}:dbt_project/models/staging/shop/stg_shop__orders.yml"))
    stg_orders = next(m for m in staging["models"] if m["name"] == "stg_shop__orders")
    created = next(c for c in stg_orders["columns"] if c["name"] == "created_at")
    assert "not_null" in created["data_tests"]  # required by meaning, no nulls in the data
    cancelled = next(c for c in stg_orders["columns"] if c["name"] == "cancelled_at")
    assert "data_tests" not in cancelled  # has nulls: no not_null
    suite = json.loads(git(repo, "show", f"{proposal.branch}:dbt_project/gx/expectations/fct_daily_sales_suite.json"))
    assert suite["name"] == "fct_daily_sales_suite" and suite["expectations"][0]["type"].startswith("expect_")


def test_duplicate_order_ids_are_caught_and_shown_with_failing_rows(tmp_path, sample_warehouse):
    """Inject the defect into a copy of the raw data: two different rows for one order and one load."""
    project = make_git_project(tmp_path / "repo", sample_warehouse)
    con = duckdb.connect(str(project / "warehouse" / "shop.duckdb"))
    con.execute("""insert into raw_shop.orders
                   select * replace (total_discounts + 500 as total_discounts)
                   from raw_shop.orders where id in (1005, 1010)
                   qualify row_number() over (partition by id order by _loaded_at desc) = 1""")
    con.close()
    proposal = flow.propose("daily_sales mart", project=project)
    [decision] = proposal.triage
    assert decision.test == "crew_unique_combination" and decision.model == "source shop.orders"
    assert decision.verdict == "data_wrong" and decision.action == "kept_as_warning"
    assert sorted(row["id"] for row in decision.failing_rows) == ["1005", "1010"]
    assert all(row["duplicate_rows"] == "2" for row in decision.failing_rows)
    node = next(n for n in proposal.checks.build.nodes if n.test_name == "crew_unique_combination"
                and n.attached_to == "orders")
    assert node.status == "warn" and node.failures == 2
    body = Path(proposal.pr).read_text()
    assert "**the data is wrong** → kept as warning" in body and "| 1005 |" in body
    assert proposal.status == "published"


class SampleMissedBrain(DeterministicBrain):
    """Plays a profile whose sample missed a status value and saw no cancelled order."""

    def test(self, plan, sources, models, profile):
        sources, models, suites = super().test(plan, sources, models, profile)

        def adjust(model):
            cols = []
            for c in model.columns:
                tests = []
                for t in c.tests:
                    if t.name == "accepted_values" and c.name == "financial_status":
                        t = t.model_copy(update={"arguments": {"values": [v for v in t.arguments["values"]
                                                                          if v != "refunded"]}})
                    tests.append(t)
                if c.name == "cancelled_at" and model.name == "stg_shop__orders":
                    tests.append(TestSpec(name="not_null", column="cancelled_at", reason="sample had no nulls"))
                cols.append(c.model_copy(update={"tests": tests}))
            return model.model_copy(update={"columns": cols})

        return sources, [adjust(m) for m in models], suites


def test_wrong_inferences_are_loosened_and_explained(git_project):
    proposal = flow.propose("daily_sales mart", project=git_project, brain=SampleMissedBrain(), publish="none")
    decisions = {d.test: d for d in proposal.triage}
    assert set(decisions) == {"accepted_values on financial_status", "not_null on cancelled_at"}
    accepted = decisions["accepted_values on financial_status"]
    assert accepted.verdict == "inference_wrong" and accepted.action == "loosened" and "refunded" in accepted.explanation
    assert decisions["not_null on cancelled_at"].action == "dropped"
    assert proposal.checks.build.success
    orders = next(m for m in proposal.models if m.name == "stg_shop__orders")
    status_tests = next(c for c in orders.columns if c.name == "financial_status").tests
    assert "refunded" in next(t for t in status_tests if t.name == "accepted_values").arguments["values"]


def test_validate_command_reruns_tests_and_suites(published, tmp_path):
    from dataeng_crew.checks import validate_project

    proposal, repo, project, *_ = published
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--branch", proposal.branch, str(repo), str(clone))
    report = validate_project(clone / "dbt_project", project / "warehouse" / "shop.duckdb")
    assert report.passed and report.build.success
    assert {r.model for r in report.suite_results} == {"fct_daily_sales"}
    only = validate_project(clone / "dbt_project", project / "warehouse" / "shop.duckdb", ["fct_daily_sales"])
    assert [r.model for r in only.suite_results] == ["fct_daily_sales"]
    # a defect in the data makes validate fail
    broken = tmp_path / "broken" / "shop.duckdb"  # same name: sources pin the database
    broken.parent.mkdir()
    shutil.copyfile(project / "warehouse" / "shop.duckdb", broken)
    con = duckdb.connect(str(broken))
    con.execute("update raw_shop.order_lines set quantity = -3 where id = 1")
    con.close()
    bad = validate_project(clone / "dbt_project", broken)
    assert not bad.passed
    failed = {n.unique_id.split(".")[2] for n in bad.build.failed_nodes}
    assert any(name.startswith("crew_values_at_least_stg_shop__order_lines_quantity") for name in failed), failed
