"""Checks the PostgreSQL and Spark warehouse tests share: one spelling per mart value, orphans of a closed foreign
key in an extract, every text a proposal wrote (to grep for a secret), and a target build that fails or is
interrupted after creating its scratch schema."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest

from dataeng_crew import flow, warehouse_stages
from dataeng_crew.contracts import BuildResult, Proposal, WarehouseTarget
from dataeng_crew.errors import BuildError
from dataeng_crew.recorder import StageIO
from dataeng_crew.tools import target_build
from tests.conftest import git


def norm_row(row) -> tuple:  # noqa: ANN001 - a row of any driver
    """Values as the gold SQL and the mart can both spell them: money to cents, days as ISO dates."""
    out = []
    for v in row:
        if isinstance(v, (decimal.Decimal, float)):
            out.append(format(decimal.Decimal(str(v)).quantize(decimal.Decimal("0.01")), "f"))
        elif isinstance(v, (dt.date, dt.datetime)):
            out.append(v.isoformat()[:10])
        else:
            out.append(str(v) if v is not None else None)
    return tuple(out)


def orphans(con, fk: str) -> int:  # noqa: ANN001 - a DuckDB connection to the extract
    """Child rows of ``schema.child.col -> schema.parent.key`` whose parent is not in the extract."""
    child, parent = fk.split(" -> ")
    c_s, c_t, c_c = child.split(".")
    p_s, p_t, p_c = parent.split(".")
    return con.execute(f"select count(*) from {c_s}.{c_t} c where c.{c_c} is not null and not exists "
                       f"(select 1 from {p_s}.{p_t} p where p.{p_c} = c.{c_c})").fetchone()[0]


def written_texts(proposal: Proposal, repo: Path) -> dict[str, str]:
    """Everything the proposal wrote or printed: ``--json``, its report, the PR, every file in the repository
    (the proposal's folder included) and the branch's commit (message and every file)."""
    texts = {"--json": flow.dumps(flow.summary(proposal)), "report": proposal.model_dump_json(),
             "PR": Path(proposal.pr).read_text()}
    for f in repo.rglob("*"):
        if f.is_file() and ".git" not in f.parts:
            texts[str(f)] = f.read_bytes().decode("latin-1")
    texts["branch"] = git(repo, "log", "-p", "-1", proposal.branch)
    return texts


def fake_run(tmp_path: Path, target: WarehouseTarget) -> SimpleNamespace:
    """The little of a proposal run ``validate_on_target`` reads: an empty project, no files, no models."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n")
    proposal = Proposal(proposal_id="20261204T000000-failing", request="x", created_at="now")
    return SimpleNamespace(target=target, proposal=proposal, folder=tmp_path / "p", files={},
                           box=SimpleNamespace(project=project, db_file=tmp_path / "none.duckdb"), models=[])


def stop_target_build(monkeypatch: pytest.MonkeyPatch, run: SimpleNamespace, create: Callable[[str], None],
                      how: str) -> str:
    """``validate_on_target`` with a dbt that creates the scratch schema (``create(schema)``), then fails (``how``
    = ``failed build``) or is interrupted (``ctrl-c``); the stage raises, and says it dropped the schema.

    Returns:
        The scratch schema's name (the caller checks the warehouse no longer has it).
    """
    schema = target_build.scratch_schema(run.proposal.proposal_id)

    def dbt_creates_then_stops(args, _project, _profiles, **_kw):  # noqa: ANN001, ANN202
        create(schema)
        if how == "ctrl-c":
            raise KeyboardInterrupt
        return BuildResult(command=args, success=False, error="Runtime Error: boom")

    monkeypatch.setattr(warehouse_stages, "run_dbt", dbt_creates_then_stops)
    with pytest.raises(KeyboardInterrupt if how == "ctrl-c" else BuildError):
        warehouse_stages.validate_on_target(run, StageIO(), ["--select", "x"])
    assert run.proposal.target_validation.dropped
    return schema


def assert_committed_in(proposal: Proposal, repo: Path, dialect: str, duckdb_only: tuple[str, ...]) -> None:
    """Every model the branch commits is ``dialect`` SQL: none of DuckDB's own spellings, and it parses there."""
    import sqlglot

    for model in proposal.models:
        committed = git(repo, "show", f"{proposal.branch}:dbt_project/{model.path}")
        for spelling in duckdb_only:
            assert spelling not in committed.lower(), (model.name, spelling)
        body = committed.replace("{{", '"').replace("}}", '"')
        assert sqlglot.parse_one(body, read=dialect) is not None


def assert_target_mart(proposal: Proposal, mart: str, whole: bool, gold_rows: list[tuple],
                       built: list[tuple]) -> None:
    """The target build passed its tests; its mart equals the hand-written SQL's rows (``gold_rows``, run on the
    target), and the DuckDB build's when the extract held every table ``whole`` (a sample's difference is reported,
    never a failure)."""
    tv = proposal.target_validation
    assert tv is not None and tv.success and tv.tests_failed == 0 and tv.tests_passed > 0
    if whole:
        assert tv.rows_differing[mart] == 0 and tv.mart_rows[mart] == tv.extract_rows[mart] > 0
    else:
        assert tv.rows_differing[mart] > 0 and "expected" in Path(proposal.pr).read_text()
    expected = sorted(norm_row(r) for r in gold_rows)
    assert len(expected) > 30 and sorted(norm_row(r[:len(expected[0])]) for r in built) == expected
