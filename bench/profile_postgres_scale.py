"""Benchmark: profiling a PostgreSQL warehouse whose fact table is 10x larger costs at most 1.5x (issue 24).

A throwaway local server (tests/pg_server.py) holds ``raw_bench.customers`` (50,000 rows, primary key) and
``raw_bench.orders`` at N and 10 N rows (ANALYZEd, as autovacuum keeps a live database). What is timed is what a
proposal does before planning: the bounded extract (a capped count, the catalog's estimate, a block sample of
``--rows`` rows, the time window, the customers of the sampled orders fetched by key) and DuckDB profiling of the
extract. Prints both sizes and the ratio (last line); exits non-zero when the ratio exceeds 1.5.

    python bench/profile_postgres_scale.py [--orders 1000000] [--rows 100000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import extract_and_profile, print_figure, scale_verdict  # noqa: E402
from dataeng_crew.contracts import WarehouseTarget  # noqa: E402
from tests.pg_server import start_local_postgres  # noqa: E402

TARGET_RATIO = 1.5


def load(server, dbname: str, orders: int) -> None:
    """Create ``dbname`` with the customers and ``orders`` orders (generated in the server)."""
    admin = server.conn.connect()
    with admin.cursor() as cur:
        cur.execute(f"create database {dbname}")
    admin.close()
    con = server.conn.connect(dbname)
    with con.cursor() as cur:
        cur.execute("create schema raw_bench")
        cur.execute("create table raw_bench.customers as select g as id, 'customer ' || g as name, "
                    "(array['DE','FR','US','JP'])[g % 4 + 1] as country from generate_series(1, 50000) g")
        cur.execute("alter table raw_bench.customers add primary key (id)")
        cur.execute(f"""create table raw_bench.orders as
            select g as id, 1 + (g::bigint * 7919) % 50000 as customer_id,
                   (array['paid','PAID','refunded','voided'])[g % 4 + 1] as financial_status,
                   ((g::bigint * 7919) % 100000)::numeric(18, 2) / 100 as total_price,
                   timestamp '2024-01-01' + (g % 31536000) * interval '1 second' as created_at
            from generate_series(1, {orders}) g""")
        cur.execute("analyze")
    con.close()


def measure(server, dbname: str, rows: int, runs: int) -> tuple[float, float, int]:
    """Median seconds of extract + profile, the extract alone, and the rows extracted."""
    target = WarehouseTarget(profile="bench", target="pg", profiles_dir="-", type="postgres", host="127.0.0.1",
                             port=server.port, user="postgres", dbname=dbname, schema="analytics")
    return extract_and_profile(target, rows, runs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=100_000, help="extract sample size per table")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server = start_local_postgres()
    try:
        figures = {}
        for n in (args.orders, 10 * args.orders):
            started = time.perf_counter()
            load(server, f"bench_{n}", n)
            loaded = time.perf_counter() - started
            figures[n] = measure(server, f"bench_{n}", args.rows, args.runs)
            print_figure(n, loaded, figures[n], args.rows)
    finally:
        server.stop()
    return scale_verdict(figures[args.orders][0], figures[10 * args.orders][0], TARGET_RATIO)


if __name__ == "__main__":
    raise SystemExit(main())
