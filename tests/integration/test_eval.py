"""The eval harness end to end: real cases pass, and producing nothing scores 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataeng_crew.agents.brains import DeterministicBrain
from dataeng_crew import evaluate, flow

pytestmark = pytest.mark.slow
CASES = Path(__file__).resolve().parents[2] / "eval" / "cases"


def test_bundled_cases_load():
    names = [c.name for c in evaluate.load_cases(CASES)]
    assert names == ["jaffle_customers_mart", "jaffle_daily_sales", "jaffle_payments_staging",
                     "jaffle_weekly_completed_orders", "sample_customers_mart", "sample_daily_sales",
                     "sample_daily_signups", "sample_dim_products", "sample_monthly_sales",
                     "sample_monthly_sales_by_country", "sample_monthly_sales_by_product_type", "sample_orders_staging", "sample_weekly_paid_orders",
                     "sample_weekly_refunds", "sample_weekly_sales"]


@pytest.mark.parametrize("name", ["sample_daily_sales", "jaffle_payments_staging", "jaffle_daily_sales",
                                  "sample_weekly_refunds"])
def test_real_cases_score_one(name):
    [case] = [c for c in evaluate.load_cases(CASES) if c.name == name]
    result = evaluate.run_case(case)
    assert result.error is None and result.score == 1.0 and result.matched == result.gold_columns > 0


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


def test_a_missing_target_model_scores_zero(tmp_path):
    case_dir = tmp_path / "cases" / "wrong_target"
    case_dir.mkdir(parents=True)
    (case_dir / "case.yml").write_text("request: stage orders\ntarget_model: fct_nothing\nsample_scale: 300\n")
    (case_dir / "gold.sql").write_text("select id from raw_shop.orders\n")
    [result] = evaluate.run_eval(tmp_path / "cases")
    assert result.score == 0.0 and result.produced_rows == 0 and result.gold_rows > 0
