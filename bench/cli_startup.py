"""Benchmark 2: `dataeng-crew --help` cold start vs `dbt --help`.

Alternating, medians of several runs. Target: <= 0.3 s and at most half of dbt's.

    python bench/cli_startup.py [--reps 7]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CLI, DBT, median, timed  # noqa: E402

TARGET_SECONDS = 0.3


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    ours, theirs = [], []
    for _ in range(args.reps):
        ours.append(timed([CLI, "--help"]))
        theirs.append(timed([DBT, "--help"]))
    o, t = median(ours), median(theirs)
    ok = o <= TARGET_SECONDS and o <= t / 2
    print(f"dataeng-crew --help {o:.3f} s vs dbt --help {t:.3f} s = {o / t:.2f}x "
          f"(target <= {TARGET_SECONDS} s and <= 0.5x dbt): {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
