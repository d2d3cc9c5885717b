"""Benchmark 1: `propose` wall time on the sample ÷ a bare `dbt build` of the very project it produced.

Same run, alternating, several repetitions, medians. Target: ratio <= 1.25. With ``--case NAME``, the eval case's
request on its warehouse (e.g. ``flights_monthly_by_airline``: nycflights13, the largest eval warehouse) on a scratch
copy of the sample project.

    python bench/propose_vs_dbt.py [--reps 3] [--case NAME]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CLI, DBT, ENV, REPO, median, scratch_project, timed  # noqa: E402

TARGET = 1.25


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--case", help="an eval case under eval/cases: its request on its warehouse")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-propose-") as tmp:
        request, extra = "daily_sales mart", []
        if args.case:
            from dataeng_crew.evaluate import case_warehouse, load_cases

            case = next((c for c in load_cases(REPO / "eval" / "cases") if c.name == args.case), None)
            if case is None:
                raise SystemExit(f"no eval case {args.case}")
            request, extra = case.request, ["--warehouse", str(case_warehouse(case, Path(tmp) / "case"))]
        project = scratch_project(Path(tmp), sample=not args.case)
        propose = [CLI, "propose", request, "--project", str(project), "--publish", "none", "--json", *extra]
        out = subprocess.run(propose, env=ENV, capture_output=True, text=True, check=True)
        sandbox = Path(json.loads(out.stdout)["report"]).parent / "sandbox"
        dbt = [DBT, "build", "--project-dir", str(sandbox / "project"), "--profiles-dir", str(sandbox / "profiles"),
               "--target-path", str(sandbox / "target-bench"), "--log-path", str(sandbox / "logs-bench"), "--quiet"]
        p_times, d_times = [], []
        for _ in range(args.reps):
            p_times.append(timed(propose))
            d_times.append(timed(dbt))
        p, d = median(p_times), median(d_times)
        print("propose runs: " + ", ".join(f"{t:.2f}" for t in p_times) + " s")
        print("bare dbt build runs: " + ", ".join(f"{t:.2f}" for t in d_times) + " s")
        ratio = p / d
        print(f"propose {p:.2f} s / dbt build {d:.2f} s = {ratio:.2f} (target <= {TARGET}): "
              f"{'OK' if ratio <= TARGET else 'MISSED'}")
        return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
