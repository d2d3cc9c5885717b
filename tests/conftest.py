"""Shared fixtures: the sample warehouse and a git-tracked copy of the sample dbt project.

Built once per session; tests that need to write get their own copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from dataeng_crew.tools.sample_data import build_sample_warehouse
from dataeng_crew.tools.warehouse import profile_warehouse

REPO = Path(__file__).resolve().parents[1]
SAMPLE_PROJECT = REPO / "dbt_project"
JAFFLE = Path(__file__).resolve().parent / "data" / "jaffle_shop_classic"
TEST_SCALE = 2_000
# Hand-written daily sales over the raw sample tables (dollars; one row per day): the eval case's gold,
# shared so the tests and the eval harness judge the mart against the same independent SQL.
GOLD_DAILY_SALES = (REPO / "eval" / "cases" / "sample_daily_sales" / "gold.sql").read_text()

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Every test copies one of a few projects: a process keeps dbt's saved parse across them, so a proposal's parse
# reads only what differs (settings.parse_cache_dir; the per-repository cache is tested on its own).
os.environ.setdefault("DATAENG_CREW_PARSE_CACHE", str(Path(tempfile.gettempdir()) / f"dataeng-crew-test-parse-{os.getppid()}"))


# Test files whose tests must share one xdist worker: they share a session fixture too costly to build twice (a local
# Spark session loaded with two warehouses, and the proposals made on it).
ONE_WORKER_FILES = ("tests/integration/test_spark_warehouse.py",)


def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN001, ANN201 - xdist's Producer, Scheduling
    """``-n`` with the default ``load`` distribution: every test on its own, as ``load`` does, except that the tests of
    each of ``ONE_WORKER_FILES`` go to one worker together. (xdist's own ``--dist loadgroup`` with the ``xdist_group``
    mark does not group under pytest 9.2: it renames ``item._nodeid``, which pytest 9.2 no longer reads.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class OneWorkerFiles(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if path in ONE_WORKER_FILES else nodeid

    return OneWorkerFiles(config, log)


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return stdout."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def open_built(db_file: str | Path):
    """A read-only connection to a proposal's sandbox DuckDB file, its warehouse attached as the tool attaches it
    (the sandbox's raw relations are views over the warehouse)."""
    from dataeng_crew.tools.warehouse import connect

    return connect(Path(db_file))


def make_git_project(dest: Path, warehouse: Path) -> Path:
    """A git repo holding a copy of the sample dbt project (in ``dbt_project/``) and its warehouse."""
    dest.mkdir(parents=True, exist_ok=True)
    project = dest / "dbt_project"
    shutil.copytree(SAMPLE_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs", "warehouse"))
    (project / "warehouse").mkdir()
    shutil.copyfile(warehouse, project / "warehouse" / "shop.duckdb")
    (dest / ".gitignore").write_text("dbt_project/warehouse/\ndbt_project/target/\n")
    git(dest, "init", "-q", "-b", "main")
    git(dest, "config", "user.name", "Test User")
    git(dest, "config", "user.email", "test@example.com")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "initial project")
    return project


@pytest.fixture(scope="session")
def sample_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample shop at test scale (read-only use)."""
    return build_sample_warehouse(tmp_path_factory.mktemp("sample") / "shop.duckdb", scale=TEST_SCALE).path


@pytest.fixture(scope="session")
def sample_profile(sample_warehouse: Path):
    """Profile of the sample warehouse."""
    return profile_warehouse(sample_warehouse)


@pytest.fixture()
def git_project(tmp_path: Path, sample_warehouse: Path) -> Path:
    """A fresh git repo with the sample project; returns the dbt project folder."""
    return make_git_project(tmp_path / "repo", sample_warehouse)


def tree_state(repo: Path) -> tuple[str, str, str]:
    """Status, HEAD commit and current branch: what must not change."""
    return (git(repo, "status", "--porcelain", "--untracked-files=all"), git(repo, "rev-parse", "HEAD"),
            git(repo, "symbolic-ref", "HEAD"))


@pytest.fixture(scope="session")
def published(tmp_path_factory, sample_warehouse):
    """One real proposal on a git copy of the sample project, shared by the tests below."""
    project = make_git_project(tmp_path_factory.mktemp("published") / "repo", sample_warehouse)
    repo = project.parent
    (project / "README.md").write_text("a local edit the user has not committed\n")
    before = tree_state(repo)
    base = git(repo, "rev-parse", "HEAD")
    stages: list[str] = []
    from dataeng_crew import flow

    proposal = flow.propose("daily_sales mart", project=project, publish="local", progress=stages.append)
    return proposal, repo, project, before, base, stages


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the session (see tests/pg_server.py).

    When it cannot start, the tests that need it FAIL; they skip only if DATAENG_CREW_SKIP_POSTGRES=1 is set.
    """
    from tests.pg_server import SKIP_ENV, start_local_postgres

    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: PostgreSQL tests skipped on purpose")
    try:
        server = start_local_postgres()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        pytest.fail(f"cannot start a local PostgreSQL server ({exc}); .ci/run installs it, or set {SKIP_ENV}=1")
    yield server
    server.stop()
