"""The MetricFlow oracle on a real proposal: MetricFlow, run on the query's generated semantic layer, equals the mart.

One proposal ("weekly share of paid orders": a value metric, a row count, a ratio, three validity rules) is built
once for the module; the oracle parses its semantic layer in a copy of the sandbox and compares row for row. A
doctored copy of the sandbox's DuckDB file (one week's paid orders doubled) must be caught.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from dataeng_crew import flow
from dataeng_crew.agents.query_layer import oracle
from dataeng_crew.tools.sandbox import write_sandbox_profile
from dataeng_crew.tools.warehouse import ATTACH_SUFFIX
from tests.conftest import make_git_project

pytestmark = pytest.mark.slow

REQUEST = "weekly share of paid orders"


@pytest.fixture(scope="module")
def built(tmp_path_factory, sample_warehouse, sample_profile):
    """A validated proposal (not published) and its sandbox."""
    project = make_git_project(tmp_path_factory.mktemp("oracle") / "repo", sample_warehouse)
    proposal = flow.propose(REQUEST, project=project, publish="none")
    assert proposal.status == "validated", proposal.error
    assert proposal.plan is not None and proposal.plan.kind == "metric"
    return proposal, Path(proposal.proposal_dir) / "sandbox"


def test_metricflow_agrees_with_the_mart_and_catches_a_doctored_one(built, sample_profile, tmp_path):
    proposal, sandbox = built
    result = oracle(proposal.plan, sample_profile, sandbox / "project", sandbox / "profiles", tmp_path / "as_built")
    assert result.skipped_reason is None, result.skipped_reason
    assert result.rows > 50  # a year of weeks
    assert result.differences == 0, result.detail
    assert result.metrics == ["paid_orders", "orders_count", "paid_order_share"]
    assert result.group_by == ["metric_time__week"]
    assert not list((sandbox / "project").rglob("*semantic_layer*.yml"))  # the layer went into a parsed copy
    parsed = tmp_path / "as_built" / "project" / "target"
    assert (parsed / "semantic_manifest.json").is_file() and not (parsed / "manifest.json").exists()  # only what
    # MetricFlow reads is written

    # the same sandbox project over a copy of its DuckDB file where one week's paid orders are doubled
    db_copy = tmp_path / "warehouse" / Path(proposal.warehouse).name
    db_copy.parent.mkdir()
    shutil.copyfile(proposal.warehouse, db_copy)
    shutil.copyfile(proposal.warehouse + ATTACH_SUFFIX, f"{db_copy}{ATTACH_SUFFIX}")  # its views read the warehouse
    mart = proposal.plan.mart_name
    con = duckdb.connect(str(db_copy))
    try:
        con.execute(f"update main.{mart} set paid_orders = paid_orders * 2 "
                    f"where week_start_date = (select min(week_start_date) from main.{mart})")
    finally:
        con.close()
    profiles = write_sandbox_profile(tmp_path, "shop", db_copy)
    doctored = oracle(proposal.plan, sample_profile, sandbox / "project", profiles, tmp_path / "doctored")
    assert doctored.skipped_reason is None, doctored.skipped_reason
    assert doctored.differences == 1
    assert doctored.detail[0].startswith("week_start_date=") and "paid_orders: mart" in doctored.detail[0]


def test_the_semantic_layer_is_committed_when_asked_and_the_oracle_reads_it(tmp_path, sample_warehouse):
    """--semantic-layer: the query's semantic_models/metrics (and the day time spine MetricFlow needs) are in the
    proposal's files, dbt parses them in the sandbox build, and the oracle checks the committed layer as it is."""
    project = make_git_project(tmp_path / "repo", sample_warehouse)
    proposal = flow.propose("monthly active customers", project=project, publish="none", semantic_layer=True)
    assert proposal.status == "validated", proposal.error
    built = Path(proposal.proposal_dir) / "sandbox" / "project"  # what is validated is what is committed
    layer = [p.relative_to(built).as_posix() for p in built.rglob("*__semantic_layer.yml")]
    assert layer == [f"models/marts/_{proposal.plan.mart_name}__semantic_layer.yml"]
    assert "semantic_models:" in (built / layer[0]).read_text()
    assert list(built.rglob("metricflow_time_spine.sql"))
    assert proposal.oracle is not None and proposal.oracle.skipped_reason is None
    assert proposal.oracle.differences == 0 and proposal.oracle.rows >= 12
    assert any("Semantic layer:" in line for line in proposal.plan.interpretations)
    without = flow.propose("monthly active customers", project=project, publish="none")  # no layer: not written
    assert not list((Path(without.proposal_dir) / "sandbox" / "project").rglob("*__semantic_layer.yml"))
