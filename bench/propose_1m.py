"""Benchmark 4: `propose` on the sample at 1M orders. Target: <= 60 s on 2 cores.

    python bench/propose_1m.py [--scale 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CLI, scratch_project, timed  # noqa: E402

TARGET = 60.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-1m-") as tmp:
        project = scratch_project(Path(tmp), scale=args.scale)
        seconds = timed([CLI, "propose", "daily_sales mart", "--project", str(project), "--publish", "none"])
    print(f"propose at {args.scale:,} orders: {seconds:.1f} s (target <= {TARGET:.0f} s): "
          f"{'OK' if seconds <= TARGET else 'MISSED'}")
    return 0 if seconds <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
