"""Benchmark 1: `propose` wall time on the sample ÷ a bare `dbt build` of the very project it produced.

Same run, alternating, several repetitions, medians. Target: ratio <= 1.25.

    python bench/propose_vs_dbt.py [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CLI, DBT, ENV, median, scratch_project, timed  # noqa: E402

TARGET = 1.25


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-propose-") as tmp:
        project = scratch_project(Path(tmp))
        propose = [CLI, "propose", "daily_sales mart", "--project", str(project), "--publish", "none", "--json"]
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
