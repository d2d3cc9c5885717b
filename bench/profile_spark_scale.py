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
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataeng_crew.contracts import WarehouseTarget  # noqa: E402
from dataeng_crew.tools.extract import extract_target  # noqa: E402
from dataeng_crew.tools.warehouse import profile_warehouse  # noqa: E402

TARGET_RATIO = 1.5


def start(root: Path) -> tuple[object, dict[str, str]]:
    """A local Spark session whose catalog lives under ``root``; the settings a profile names to reach it."""
    from pyspark.sql import SparkSession

    conf = {"spark.sql.warehouse.dir": str(root / "warehouse"),
            "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={root}/metastore_db;create=true",
            "spark.sql.session.timeZone": "UTC", "spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"}
    builder = SparkSession.builder.master("local[*]").appName("dataeng-crew-bench").enableHiveSupport()
    for key, value in {**conf, "spark.driver.extraJavaOptions": f"-Dderby.system.home={root}/derby"}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark, conf


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
    totals, extracts, extracted = [], [], 0
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            summary = extract_target(target, Path(tmp), max_rows=rows, window_days=None)
            extracts.append(time.perf_counter() - started)
            profile_warehouse(Path(summary.db_file))
            totals.append(time.perf_counter() - started)
            extracted = sum(r.rows for r in summary.relations)
    return statistics.median(totals), statistics.median(extracts), extracted


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=100_000, help="extract sample size per table")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dataeng-crew-spark-bench-") as root:
        spark, conf = start(Path(root))
        try:
            load(spark, 1000)
            measure(conf, args.rows, 1)  # warm-up: the JVM compiles Spark's code paths once
            figures = {}
            for n in (args.orders, 10 * args.orders):
                started = time.perf_counter()
                load(spark, n)
                loaded = time.perf_counter() - started
                figures[n] = measure(conf, args.rows, args.runs)
                total, extract, extracted = figures[n]
                print(f"{n:>12,} orders (loaded in {loaded:.0f} s): extract {extract:.2f} s + profile = {total:.2f} s, "
                      f"{extracted:,} rows extracted (sample {args.rows:,} per table)", flush=True)
        finally:
            spark.stop()
    small, large = figures[args.orders][0], figures[10 * args.orders][0]
    ratio = large / small
    print(f"ratio t(10x)/t(1x) = {ratio:.2f} (target <= {TARGET_RATIO}): {'OK' if ratio <= TARGET_RATIO else 'MISSED'}")
    return 0 if ratio <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
