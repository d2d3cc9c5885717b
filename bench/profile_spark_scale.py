"""Benchmark: profiling a Spark warehouse whose fact table is 10x larger costs at most 1.5x (issue 24).

A local Spark session (catalog and data under a temporary folder) holds ``raw_bench.customers`` (50,000 rows) and
``raw_bench.orders`` at N, then 10 N rows (Parquet tables written by Spark, ``ANALYZE``d as a maintained warehouse
is). What is timed is what a proposal does before planning: the bounded extract (a capped count, the catalog's row
statistics, ``TABLESAMPLE`` sized for ``--rows`` rows with a ``LIMIT``, the customers of the sampled orders fetched
by key) and DuckDB profiling of the extract. Spark starts (and warms up) once, before either size is timed. Prints
both sizes and the ratio (last line); exits non-zero when the ratio exceeds 1.5.

    python bench/profile_spark_scale.py [--orders 1000000] [--rows 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import extract_and_profile, print_figure, scale_verdict  # noqa: E402
from tests.spark_session import start_local_spark  # noqa: E402
from dataeng_crew.contracts import WarehouseTarget  # noqa: E402

TARGET_RATIO = 1.5


def load(spark, orders: int) -> None:  # noqa: ANN001 - a SparkSession
    """``raw_bench`` with the customers and ``orders`` orders (generated in Spark), statistics computed."""
    spark.sql("drop database if exists raw_bench cascade")
    spark.sql("create database raw_bench")
    spark.sql("create table raw_bench.customers using parquet as select id, concat('customer ', id) as name, "
              "element_at(array('DE', 'FR', 'US', 'JP'), cast(id % 4 + 1 as int)) as country "
              "from range(1, 50001)")
    spark.sql(f"""create table raw_bench.orders using parquet as
        select id, 1 + (id * 7919) % 50000 as customer_id,
               element_at(array('paid', 'PAID', 'refunded', 'voided'), cast(id % 4 + 1 as int)) as financial_status,
               cast((id * 7919) % 100000 as decimal(18, 2)) / 100 as total_price,
               timestamp_seconds(1704067200 + id % 31536000) as created_at
        from range(1, {orders + 1})""")
    for table in ("customers", "orders"):
        spark.sql(f"analyze table raw_bench.{table} compute statistics")


def measure(conf: dict[str, str], rows: int, runs: int) -> tuple[float, float, int]:
    """Median seconds of extract + profile, the extract alone, and the rows extracted."""
    target = WarehouseTarget(profile="bench", target="spark", profiles_dir="-", type="spark", host="localhost",
                             schema="analytics", method="session", options={"server_side_parameters": conf})
    return extract_and_profile(target, rows, runs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=100_000, help="extract sample size per table")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dataeng-crew-spark-bench-") as root:
        spark, conf = start_local_spark(Path(root), "dataeng-crew-bench", "local[*]", 4)
        try:
            load(spark, 1000)
            measure(conf, args.rows, 1)  # warm-up: the JVM compiles Spark's code paths once
            figures = {}
            for n in (args.orders, 10 * args.orders):
                started = time.perf_counter()
                load(spark, n)
                loaded = time.perf_counter() - started
                figures[n] = measure(conf, args.rows, args.runs)
                print_figure(n, loaded, figures[n], args.rows)
        finally:
            spark.stop()
    return scale_verdict(figures[args.orders][0], figures[10 * args.orders][0], TARGET_RATIO)


if __name__ == "__main__":
    raise SystemExit(main())
