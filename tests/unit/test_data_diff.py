"""The data diff over two real DuckDB files: counts, key-joined value changes, schema changes, PII masked."""

from __future__ import annotations

import duckdb

from dataeng_crew.tools.data_diff import MASK, diff_markdown, diff_model, removed_model


def _db(path, sql):
    con = duckdb.connect(str(path))
    con.execute(sql)
    con.close()
    return path


def test_key_joined_diff_counts_schema_and_masks_pii(tmp_path):
    base = _db(tmp_path / "base.duckdb", """
        create table dim_customers as select * from (values
            (1, 'a@x.com', 10.00, 'gold'), (2, 'b@x.com', 20.00, 'gold'), (3, 'c@x.com', 30.00, 'silver'),
            (4, 'd@x.com', 40.00, 'silver')) as t(customer_id, email, lifetime_value, tier)""")
    head = _db(tmp_path / "head.duckdb", """
        create table dim_customers as select * from (values
            (1, 'a@x.com', 10.00, 1), (2, 'b2@x.com', 25.00, 1), (3, 'c@x.com', 30.00, 2),
            (5, 'e@x.com', 50.00, 2), (6, 'f@x.com', 60.00, 2)) as t(customer_id, email, lifetime_value, tier_rank)""")
    diff = diff_model(base, head, "dim_customers", ["customer_id"], masked={"email"})
    assert diff.status == "changed" and (diff.base_rows, diff.head_rows) == (4, 5)
    assert (diff.rows_added, diff.rows_removed, diff.rows_changed) == (2, 1, 1)  # 5, 6 new; 4 gone; 2 changed
    assert diff.changed_columns == {"email": 1, "lifetime_value": 1}
    assert {(s.column, s.change) for s in diff.schema_changes} == {("tier", "removed"), ("tier_rank", "added")}
    assert diff.examples == [{"customer_id": "2", "email": MASK, "lifetime_value": "20.00 → 25.00"}]
    assert diff.masked_columns == ["email"]
    text = diff_markdown([diff])
    assert "| `dim_customers` | changed | 4 → 5 | 2 | 1 | 1 | −`tier`, +`tier_rank` |" in text
    assert "b2@x.com" not in text and "b@x.com" not in text


def test_a_new_model_and_an_unchanged_one(tmp_path):
    base = _db(tmp_path / "b.duckdb", "create table m as select range as k, range * 2 as v from range(10)")
    head = _db(tmp_path / "h.duckdb", "create table m as select range as k, range * 2 as v from range(10);"
                                      "create table n as select 1 as k")
    assert diff_model(base, head, "m", ["k"]).status == "unchanged"
    new = diff_model(base, head, "n", ["k"])
    assert new.status == "added" and new.head_rows == 1 and new.base_rows is None
    assert diff_model(None, head, "m", ["k"]).status == "added"


def test_a_removed_model_keeps_its_base_count(tmp_path):
    base = _db(tmp_path / "b.duckdb", "create table old as select range as k from range(7)")
    gone = removed_model(base, "old")
    assert (gone.status, gone.base_rows, gone.head_rows) == ("removed", 7, 0)
    assert "| `old` | removed | 7 → 0 |" in diff_markdown([gone])
