"""Helpers shared by the benchmarks: timed subprocess runs and a scratch copy of the sample project."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLI = str(BIN / "dataeng-crew")
DBT = str(BIN / "dbt")
ENV = {**os.environ, "CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true", "DO_NOT_TRACK": "1",
       "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    """Wall seconds of one run; raises when the command fails."""
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def median(values: list[float]) -> float:
    """Median of the runs."""
    return statistics.median(values)


def scratch_project(tmp: Path, scale: int | None = None, sample: bool = True) -> Path:
    """A git repo with the sample project and (``sample``) its warehouse at ``scale`` orders; returns the project
    dir."""
    repo = tmp / "repo"
    shutil.copytree(REPO / "dbt_project", repo / "dbt_project",
                    ignore=shutil.ignore_patterns("warehouse", "target", "logs"))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    if sample:
        timed([CLI, "sample", "--project", str(repo / "dbt_project")] + (["--scale", str(scale)] if scale else []))
    return repo / "dbt_project"


def extract_and_profile(target, rows: int, runs: int) -> tuple[float, float, int]:  # noqa: ANN001 - WarehouseTarget
    """Median seconds of extract + profile of ``target``, of the extract alone, and the rows extracted."""
    import tempfile

    from dataeng_crew.tools.extract import extract_target
    from dataeng_crew.tools.warehouse import profile_warehouse

    totals, extracts, extracted = [], [], 0
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            summary = extract_target(target, Path(tmp), max_rows=rows, window_days=None)
            extracts.append(time.perf_counter() - started)
            profile_warehouse(Path(summary.db_file))
            totals.append(time.perf_counter() - started)
            extracted = sum(r.rows for r in summary.relations)
    return median(totals), median(extracts), extracted


def print_figure(orders: int, loaded: float, figure: tuple[float, float, int], rows: int) -> None:
    """One line of a profile-scale bench: what loading, extracting and profiling ``orders`` orders took."""
    total, extract, extracted = figure
    print(f"{orders:>12,} orders (loaded in {loaded:.0f} s): extract {extract:.2f} s + profile = {total:.2f} s, "
          f"{extracted:,} rows extracted (sample {rows:,} per table)", flush=True)


def scale_verdict(small: float, large: float, target: float) -> int:
    """Print the ratio of the 10× run to the 1× run against ``target``; the exit code (0: met)."""
    ratio = large / small
    print(f"ratio t(10x)/t(1x) = {ratio:.2f} (target <= {target}): {'OK' if ratio <= target else 'MISSED'}")
    return 0 if ratio <= target else 1
