import duckdb

from dataeng_crew.tools.sample_data import CLOSED_DAYS, build_sample_warehouse


def _digest(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"select count(*), sum(hash(columns(*))) from raw_shop.{t}").fetchall()
                for t in ("customers", "orders", "order_lines", "refunds")}
    finally:
        con.close()


def test_same_seed_same_data(tmp_path):
    a = build_sample_warehouse(tmp_path / "a" / "shop.duckdb", scale=300, seed=7).path
    b = build_sample_warehouse(tmp_path / "b" / "shop.duckdb", scale=300, seed=7).path
    c = build_sample_warehouse(tmp_path / "c" / "shop.duckdb", scale=300, seed=8).path
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_raw_data_is_messy_the_way_loads_are(sample_warehouse):
    con = duckdb.connect(str(sample_warehouse), read_only=True)
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    assert q("select count(*) - count(distinct id) from raw_shop.orders") > 0  # re-synced duplicates
    assert q("select count(distinct financial_status) > count(distinct lower(trim(financial_status))) from raw_shop.orders")
    assert q("select count(*) from raw_shop.orders where test") > 0
    assert q("select count(*) from raw_shop.orders where customer_id is null") > 0
    assert q("select typeof(created_at) from raw_shop.orders limit 1") == "VARCHAR"
    assert q("select count(*) from raw_shop.orders where created_at like '%T%Z'") > 0
    assert q("select typeof(subtotal_price) from raw_shop.orders limit 1") == "BIGINT"  # cents
    for day in CLOSED_DAYS:
        assert q(f"select count(*) from raw_shop.orders where created_at like '{day.isoformat()}%'") == 0
    con.close()
