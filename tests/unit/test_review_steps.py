"""The review commands of a PR's first screen ask for the keyed-hash key whenever the branch needs it."""

from __future__ import annotations

from pathlib import Path

from dataeng_crew.review_steps import review_commands
from dataeng_crew.settings import PII_KEY_ENV


def _project(root: Path, model_sql: str, compiled_sql: str = "") -> Path:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: shop\nprofile: shop\nconfig-version: 2\nversion: '1.0'\n")
    (root / "models" / "weekly_sales.sql").write_text("select 1 as x\n")
    (root / "models" / "dim_customers.sql").write_text(model_sql)
    if compiled_sql:  # dbt's own output folder never counts
        (root / "target" / "compiled").mkdir(parents=True)
        (root / "target" / "compiled" / "dim_customers.sql").write_text(compiled_sql)
    return root


def test_a_merged_masking_mart_makes_every_later_review_export_the_key(tmp_path):
    keyed = f"select sha256(env_var('{PII_KEY_ENV}') || first_name) as first_name_hash from x\n"
    project = _project(tmp_path / "masked", keyed)
    steps = review_commands(project, None, "", "dataeng-crew/weekly-sales", None, remote=False)
    assert any(s.startswith(f"export {PII_KEY_ENV}=") for s in steps)
    assert steps.index(next(s for s in steps if s.startswith("export"))) < steps.index("dbt build")


def test_no_key_is_asked_for_when_no_model_reads_it(tmp_path):
    project = _project(tmp_path / "plain", "select 1 as customer_id\n", compiled_sql=f"-- {PII_KEY_ENV}\n")
    steps = review_commands(project, None, "", "dataeng-crew/weekly-sales", None, remote=False)
    assert not any(PII_KEY_ENV in s for s in steps) and steps[-1] == "dbt build"
