"""Benchmark 5: `propose` at warehouse scale — a warehouse padded with tables the request never touches must
cost nothing, because the sandbox attaches the warehouse instead of copying it.

For each scale (default 1M and 10M orders): build the sample, copy the project and pad the copy's warehouse with
``--pad-gb`` of incompressible tables in another schema, flush it to disk (the padded runs must not pay for the
bench's own 5 GB write-back), then propose "daily_sales mart" in both projects, alternating, ``--reps`` pairs after
one proposal each that is not counted (a project's first proposal also parses it), medians. Targets: padded ≤ 1.1 × unpadded; the sandbox folder holds ≤ 50 MB besides its DuckDB file
(which holds the built models only: the raw relations are views); peak memory (the largest process) ≤ 2 GB at
10M.

    python bench/propose_scale.py [--scales 1000000 10000000] [--pad-gb 5] [--reps 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CLI, ENV, median, scratch_project  # noqa: E402

RATIO_TARGET, SANDBOX_EXTRA_MB, PEAK_GB = 1.1, 50, 2.0
PEAK_PROBE = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
              "done = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
              "print(done.returncode, time.perf_counter() - t, "
              "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.stdout.write(done.stdout)")


def propose(project: Path, warehouse: Path | None = None) -> tuple[float, float, Path]:
    """One propose: wall seconds, peak RSS of the largest process (GB), the proposal's sandbox folder. With
    ``warehouse``, its modification time is moved first: the run profiles the warehouse as after a data load (a
    profile is read back only while the warehouse is unchanged), so padded and unpadded runs profile alike."""
    if warehouse is not None:
        os.utime(warehouse)
    cmd = [sys.executable, "-c", PEAK_PROBE, CLI, "propose", "daily_sales mart", "--project", str(project),
           "--publish", "none", "--json"]
    out = subprocess.run(cmd, env=ENV, capture_output=True, text=True, check=True).stdout
    head, _, body = out.partition("\n")
    code, seconds, peak_kb = head.split()
    if code != "0":
        raise SystemExit(f"propose failed ({code}): {body[-2000:]}")
    report = json.loads(body)["report"]
    return float(seconds), int(peak_kb) / 1024 ** 2, Path(report).parent / "sandbox"


def pad(warehouse: Path, gigabytes: float) -> float:
    """Add incompressible tables (random doubles) in schema ``padding`` until the file grew by ``gigabytes``."""
    start = warehouse.stat().st_size
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("create schema if not exists padding")
        i = 0
        while warehouse.stat().st_size - start < gigabytes * 1024 ** 3:
            con.execute(f"create table padding.t{i} as select random() as a, random() as b, random() as c, "
                        "random() as d from range(25000000)")
            con.execute("checkpoint")
            i += 1
    finally:
        con.close()
    return (warehouse.stat().st_size - start) / 1024 ** 3


def folder_mb(folder: Path) -> float:
    """Size of everything under ``folder``, in MB."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1024 ** 2


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--pad-gb", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    ok = True
    for scale in args.scales:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            started = time.perf_counter()
            project = scratch_project(Path(tmp) / "plain", scale=scale)
            warehouse = project / "warehouse" / "shop.duckdb"
            print(f"[{scale:,} orders] sample built in {time.perf_counter() - started:.0f} s: "
                  f"{warehouse.stat().st_size / 1024 ** 2:,.0f} MB")
            shutil.copytree(project.parent, Path(tmp) / "padded", symlinks=True)  # the repository, git and all
            padded_project = Path(tmp) / "padded" / project.name
            padded_warehouse = padded_project / "warehouse" / "shop.duckdb"
            grown = pad(padded_warehouse, args.pad_gb)
            os.sync()
            print(f"[{scale:,} orders] padded copy: +{grown:.1f} GB = "
                  f"{padded_warehouse.stat().st_size / 1024 ** 3:.1f} GB (flushed to disk)")
            propose(project)  # not counted: a project's first proposal also parses it (later ones read the
            propose(padded_project)  # inventory back while nothing changed): the measured runs are later proposals
            plain, padded = [], []
            for _ in range(args.reps):
                plain.append(propose(project, warehouse))
                padded.append(propose(padded_project, padded_warehouse))
            p, q = median([r[0] for r in plain]), median([r[0] for r in padded])
            sandbox = padded[-1][2]
            db_mb = sum(f.stat().st_size for f in (sandbox / "warehouse").glob("*.duckdb")) / 1024 ** 2
            extra = folder_mb(sandbox) - db_mb
            peak = max(r[1] for r in plain + padded)
            ratio = q / p
            checks = [ratio <= RATIO_TARGET, extra <= SANDBOX_EXTRA_MB] + ([peak <= PEAK_GB] if scale >= 10_000_000 else [])
            ok = ok and all(checks)
            print(f"[{scale:,} orders] propose {p:.1f} s unpadded, {q:.1f} s padded = {ratio:.2f} "
                  f"(runs: {', '.join(f'{a[0]:.1f}/{b[0]:.1f}' for a, b in zip(plain, padded))}; "
                  f"target <= {RATIO_TARGET}); sandbox: DuckDB file {db_mb:.1f} MB (built models), "
                  f"{extra:.1f} MB besides (target <= {SANDBOX_EXTRA_MB}); peak memory {peak:.2f} GB"
                  + (f" (target <= {PEAK_GB})" if scale >= 10_000_000 else "")
                  + f": {'OK' if all(checks) else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
