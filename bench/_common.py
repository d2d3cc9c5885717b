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
