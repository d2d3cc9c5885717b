import duckdb
import pytest

from dataeng_crew.errors import WarehouseError
from tests.conftest import JAFFLE, TEST_SCALE
from dataeng_crew.tools.warehouse import load_folder, open_readonly, profile_warehouse, snake_case


def test_sample_profile_finds_keys_duplicates_and_foreign_keys(sample_profile):
    orders = sample_profile.table("orders")
    assert orders.row_count > TEST_SCALE  # re-synced duplicates
    assert orders.duplicate_key_rows["id"] == orders.row_count - TEST_SCALE
    assert sample_profile.table("customers").candidate_keys[0] == "id"
    fks = {(f.table, f.column, f.ref_table) for f in sample_profile.foreign_keys}
    assert {("orders", "customer_id", "customers"), ("order_lines", "order_id", "orders"),
            ("order_lines", "product_id", "products"), ("refunds", "order_id", "orders")} <= fks


def test_text_timestamps_get_their_formats(sample_profile):
    created = sample_profile.table("orders").column("created_at")
    assert created.data_type == "VARCHAR"
    assert created.timestamp_formats == ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]
    assert created.unparsed_timestamps == 0


def test_low_cardinality_values_are_listed(sample_profile):
    status = sample_profile.table("orders").column("financial_status")
    assert {"PAID", "paid"} <= set(status.top_values)
    assert sample_profile.table("orders").column("id").top_values == []


def test_big_tables_are_sampled(sample_warehouse):
    profile = profile_warehouse(sample_warehouse, sample_rows=500)
    lines = profile.table("order_lines")
    assert lines.sampled and lines.profiled_rows == 500 and lines.row_count > 500


def test_readonly_connection_is_locked_down(sample_warehouse):
    with open_readonly(sample_warehouse) as con:
        with pytest.raises(duckdb.Error):
            con.execute("select * from read_text('/etc/passwd')")
        with pytest.raises(duckdb.Error):
            con.execute("set enable_external_access = true")
        with pytest.raises(duckdb.Error):
            con.execute("create table raw_shop.x as select 1")


def test_missing_or_bad_warehouse_is_a_clear_error(tmp_path):
    with pytest.raises(WarehouseError, match="not found"):
        profile_warehouse(tmp_path / "nope.duckdb")
    bad = tmp_path / "bad.duckdb"
    bad.write_text("not a database")
    with pytest.raises(WarehouseError, match="cannot open"):
        profile_warehouse(bad)


def test_jaffle_shop_folder_loads_and_relates(tmp_path):
    db = load_folder(JAFFLE, tmp_path / "jaffle.duckdb")
    profile = profile_warehouse(db)
    assert sorted(t.name for t in profile.tables) == ["raw_customers", "raw_orders", "raw_payments"]
    assert profile.table("raw_orders").row_count == 99
    fks = {(f.table, f.column, f.ref_table) for f in profile.foreign_keys}
    assert ("raw_payments", "order_id", "raw_orders") in fks
    assert ("raw_orders", "user_id", "raw_customers") in fks  # user is a synonym of customer
    status = profile.table("raw_orders").column("status")
    assert set(status.top_values) == {"completed", "placed", "return_pending", "returned", "shipped"}
    assert profile.table("raw_payments").column("order_id").top_values == []  # ids are not categories


@pytest.mark.parametrize(("raw", "clean"), [("OrderID", "order_id"), ("Order Date", "order_date"),
                                            ("customerName", "customer_name"), ("2nd col", "_2nd_col"),
                                            ("__weird--name__", "weird_name"), ("Größe", "grosse"),
                                            ("Café Name", "cafe_name"), ("東京", "col_" + __import__("hashlib").sha1(
                                                "東京".encode()).hexdigest()[:8])])
def test_snake_case(raw, clean):
    assert snake_case(raw) == clean


def test_a_format_first_seen_after_the_probe_rows_still_joins_the_cover(tmp_path):
    from dataeng_crew.tools.warehouse import FORMAT_PROBE_ROWS, profile_table

    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(f"create table events as select i as id, case when i < {FORMAT_PROBE_ROWS + 500} "
                    "then strftime(timestamp '2024-01-01' + to_seconds(i), '%Y-%m-%d %H:%M:%S') "
                    "else strftime(timestamp '2024-01-01' + to_seconds(i), '%m/%d/%Y') end as happened_at, "
                    f"from range({FORMAT_PROBE_ROWS + 600}) t(i)")
    with open_readonly(db) as con:
        column = profile_table(con, "w", "main", "events").column("happened_at")
    assert column.timestamp_formats == ["%Y-%m-%d %H:%M:%S", "%m/%d/%Y"] and column.unparsed_timestamps == 0


def test_a_pass_through_view_is_profiled_at_its_table_and_reads_the_same(tmp_path):
    from dataeng_crew.tools.warehouse import pass_through_base, profile_table

    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema raw")
        con.execute("create table raw.big as select i as id, i % 7 as kind from range(5000000) t(i)")
        con.execute("create view raw.big_view as select * from raw.big")
        con.execute("create view raw.big_filtered as select * from raw.big where kind = 1")
        con.execute("create view raw.big_renamed as select id as big_id, kind from raw.big")
    with open_readonly(db) as con:
        assert pass_through_base(con, "w", "raw", "big_view") == '"w"."raw"."big"'
        assert [pass_through_base(con, "w", "raw", v) for v in ("big", "big_filtered", "big_renamed")] == [None] * 3
        view, table = profile_table(con, "w", "raw", "big_view"), profile_table(con, "w", "raw", "big")
        filtered = profile_table(con, "w", "raw", "big_filtered")
    assert view.name == "big_view" and view.row_count == table.row_count == 5_000_000
    assert [(c.name, c.data_type) for c in view.columns] == [(c.name, c.data_type) for c in table.columns]
    assert view.sampled and 100_000 < view.profiled_rows < 300_000  # blocks of the table: ≈ the 200,000 asked
    assert view.column("kind").top_values == table.column("kind").top_values == [str(k) for k in range(7)]
    assert filtered.row_count == 5_000_000 // 7 + 1
