"""Benchmark: profiling + GX validation of a 1M- and a 10M-row table (time, peak memory, ratio).

Each size runs in its own process so peak RSS is its own. Prints the figures, the last line being
the summary; exits non-zero when a target is missed (10M profile <= 3 s, <= 1 GB, t(10M)/t(1M) <= 2).

    python bench/profile_scale.py
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS, TARGET_BYTES, TARGET_RATIO = 3.0, 1 << 30, 2.0


def make_table(path: Path, rows: int) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("create schema raw_bench")
    con.execute(f"""
        create table raw_bench.orders as
        select range as id,
               range % 50000 as customer_id,
               (['paid', 'PAID', 'refunded', 'voided'])[range % 4 + 1] as financial_status,
               (range * 7919) % 100000 as total_price,
               timestamp '2024-01-01' + (range % 31536000) * interval 1 second as created_at,
               case when range % 10 = 0 then null else 'note ' || (range % 1000) end as note
        from range({rows})
    """)
    con.close()


def measure(rows: int) -> dict:
    """Run in a child: build the table, then time profiling and GX validation separately."""
    from dataeng_crew.contracts import ExpectationSpec, ExpectationSuiteSpec
    from dataeng_crew.tools.expectations import validate_suites
    from dataeng_crew.tools.warehouse import profile_warehouse

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        make_table(db, rows)
        started = time.perf_counter()
        profile = profile_warehouse(db)
        profile_s = time.perf_counter() - started
        table = profile.tables[0]
        suite = ExpectationSuiteSpec(name="orders_suite", model="orders", expectations=[
            ExpectationSpec(type="ExpectTableRowCountToBeBetween", kwargs={"min_value": rows, "max_value": rows}),
            ExpectationSpec(type="ExpectColumnValuesToNotBeNull", kwargs={"column": "id"}),
            ExpectationSpec(type="ExpectColumnValuesToBeInSet",
                            kwargs={"column": "financial_status", "value_set": ["paid", "PAID", "refunded", "voided"]}),
            ExpectationSpec(type="ExpectColumnValuesToBeBetween", kwargs={"column": "total_price", "min_value": 0}),
        ])
        import dataeng_crew.tools.expectations  # noqa: F401  - exclude GX import time from the validation figure
        dataeng_crew.tools.expectations._gx()
        started = time.perf_counter()
        [result] = validate_suites(db, [suite], schema="raw_bench")
        validate_s = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rows": rows, "profile_s": round(profile_s, 3), "validate_s": round(validate_s, 3), "peak_bytes": peak,
            "sampled": table.sampled, "profiled_rows": table.profiled_rows, "gx_failed": result.failed}


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(measure(int(sys.argv[2]))))
        return 0
    figures = {}
    for rows in (1_000_000, 10_000_000):
        out = subprocess.run([sys.executable, __file__, "--child", str(rows)], capture_output=True, text=True, check=True)
        figures[rows] = json.loads(out.stdout.strip().splitlines()[-1])
        f = figures[rows]
        print(f"{rows:>12,} rows: profile {f['profile_s']:.2f} s (sampled={f['sampled']}, {f['profiled_rows']:,} rows), "
              f"GX validation {f['validate_s']:.2f} s, peak {f['peak_bytes'] / 2**20:.0f} MiB, GX failed {f['gx_failed']}")
    big, small = figures[10_000_000], figures[1_000_000]
    ratio = big["profile_s"] / small["profile_s"]
    ok = big["profile_s"] <= TARGET_SECONDS and big["peak_bytes"] <= TARGET_BYTES and ratio <= TARGET_RATIO
    print(f"profile 10M: {big['profile_s']:.2f} s (target <= {TARGET_SECONDS}), peak {big['peak_bytes'] / 2**20:.0f} MiB "
          f"(target <= 1024), t(10M)/t(1M) = {ratio:.2f} (target <= {TARGET_RATIO}); GX 10M {big['validate_s']:.2f} s: "
          f"{'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
