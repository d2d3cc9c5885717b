"""Sandbox = commit, for revisions too: after propose and after a revise round of every kind the grammar knows,
a fresh clone of the branch builds green with dbt on its own (the project's profile, the warehouse as it is).

Rounds on one branch (at most five): rename + drop + remove a test; add the measure back + materialize as a
view; the grain; a breakdown (a new source table joins the declared ones); a filter + an exclusion + the test back.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataeng_crew import flow
from dataeng_crew import revise as revising
from dataeng_crew.agents.revision import GRAMMAR
from dataeng_crew.contracts import ChangeKind
from tests.conftest import git, make_git_project

pytestmark = pytest.mark.slow
BRANCH = "dataeng-crew/daily-sales-mart"
ROUNDS = [
    "rename net_sales to net_revenue\ndrop the average_order_value measure\nremove the not_null test on net_revenue",
    "add measure average_order_value\nmaterialize it as a view",
    "make it weekly",
    "break it down by country",
    "only currency = USD\nexclude rows where financial_status = pending\nadd a not_null test on net_revenue",
]


def _fresh_build(repo: Path, tmp: Path, warehouse: Path) -> subprocess.CompletedProcess:
    """dbt build of a fresh clone of the branch, with the project's own profile, outside any sandbox."""
    clone = tmp / "clone"
    shutil.rmtree(clone, ignore_errors=True)
    git(tmp, "clone", "-q", "--branch", BRANCH, str(repo), str(clone))
    project = clone / "dbt_project"
    (project / "warehouse").mkdir(exist_ok=True)
    shutil.copyfile(warehouse, project / "warehouse" / "shop.duckdb")
    dbt = str(Path(sys.executable).with_name("dbt"))
    return subprocess.run([dbt, "build", "--project-dir", str(project), "--profiles-dir", str(project)],
                          cwd=project, capture_output=True, text=True, timeout=600,
                          env={"PATH": str(Path(sys.executable).parent), "HOME": str(tmp),
                               "DATAENG_CREW_PII_KEY": "k" * 32, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})


def test_every_round_builds_from_a_fresh_clone(tmp_path, sample_warehouse):
    project = make_git_project(tmp_path / "repo", sample_warehouse)
    repo = project.parent
    proposal = flow.propose("daily_sales mart", project=project, publish="local")
    assert proposal.status == "published"
    built = _fresh_build(repo, tmp_path, sample_warehouse)
    assert built.returncode == 0, built.stdout[-3000:]
    kinds: set[str] = set()
    for number, comment in enumerate(ROUNDS, start=1):
        result = revising.revise(BRANCH, project=project, comments=[comment])
        assert result.status == "revised" and result.round == number, [o.reply for o in result.outcomes]
        assert all(o.status == "applied" and "cannot" not in o.reply for o in result.outcomes), \
            [o.reply for o in result.outcomes]
        kinds |= {c.kind for o in result.outcomes for c in o.changes}
        built = _fresh_build(repo, tmp_path, sample_warehouse)
        assert built.returncode == 0, f"round {number} ({comment!r}) does not build:\n" + built.stdout[-3000:]
    grammar_kinds = set(ChangeKind.__args__) - {"repair"}  # repair is the LLM crew's, not a reviewer's
    assert kinds == grammar_kinds, (sorted(grammar_kinds - kinds), GRAMMAR)
