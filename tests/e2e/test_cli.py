"""The installed CLI, run as a user would, on a fresh git copy of the sample project."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import GOLD_DAILY_SALES, SAMPLE_PROJECT, git
from tests.conftest import open_built

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("dataeng-crew"))


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITHUB_TOKEN": "ghp_e2e_secret_token_value_123"}
    return subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("e2e") / "repo"
    repo.mkdir()
    shutil.copytree(SAMPLE_PROJECT, repo / "dbt_project", ignore=shutil.ignore_patterns("warehouse", "target", "logs"))
    (repo / ".gitignore").write_text("dbt_project/warehouse/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=U", "-c", "user.email=u@example.com", "add", "-A")
    git(repo, "-c", "user.name=U", "-c", "user.email=u@example.com", "commit", "-q", "-m", "init")
    done = run("sample", "--scale", "3000", cwd=repo)
    assert done.returncode == 0, done.stderr
    return repo


@pytest.fixture(scope="module")
def proposed(repo) -> subprocess.CompletedProcess[str]:
    """`propose --json` run once through the installed CLI; the tests that read its branch depend on it."""
    return run("propose", "daily_sales mart", "--json", cwd=repo)


def test_propose_json_and_mart_matches_raw_to_the_cent(repo, proposed):
    done = proposed
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["branch"] == "dataeng-crew/daily-sales-mart" and out["status"] == "published"
    assert out["build"]["success"] is True
    assert {m["name"] for m in out["models"]} >= {"stg_shop__orders", "fct_daily_sales"}
    mart = next(m for m in out["models"] if m["name"] == "fct_daily_sales")
    assert mart["layer"] == "marts" and mart["path"] == "models/marts/fct_daily_sales.sql"
    assert Path(out["pr"]).is_file()
    for stage in ("profile warehouse", "sqlglot check", "dbt build (sandbox)", "publish (local branch)"):
        assert stage in done.stderr

    con = open_built(out["warehouse"])
    rows, first, last, net = con.execute(
        f"select count(*), min(sales_date), max(sales_date), sum(net_sales) from {mart['relation']}").fetchone()
    truth = con.execute(f"select round(sum(net) * 100), min(day), max(day) from ({GOLD_DAILY_SALES})").fetchone()
    con.close()
    assert rows == (last - first).days + 1
    assert (first, last) == (truth[1], truth[2])
    assert int(net * 100) == truth[0]

    # the token in the environment never reaches any file the proposal wrote
    proposal_dir = Path(out["report"]).parent
    for path in proposal_dir.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".md", ".yml", ".sql", ".log", ".txt"}:
            assert "ghp_e2e_secret_token_value_123" not in path.read_text(errors="ignore"), path
    committed = git(repo, "show", out["branch"])
    assert "ghp_e2e" not in committed
    assert git(repo, "status", "--porcelain") == ""


def test_request_it_cannot_map_fails_helpfully_and_creates_no_branch(repo):
    branches = git(repo, "branch", "--list")
    done = run("propose", "monthly rocket launches", cwd=repo)
    assert done.returncode == 3
    assert "rocket launches" in done.stderr and "daily_sales mart" in done.stderr
    assert "Traceback" not in done.stderr
    assert git(repo, "branch", "--list") == branches


def test_empty_request_fails_with_json_error(repo):
    done = run("propose", "", "--json", cwd=repo)
    assert done.returncode == 3
    assert json.loads(done.stdout)["error_type"] == "RequestError"


def test_check_command_validates_the_published_branch(repo, proposed, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--branch", "dataeng-crew/daily-sales-mart", str(repo), str(clone))
    done = run("check", "--project", str(clone / "dbt_project"),
               "--warehouse", str(repo / "dbt_project" / "warehouse" / "shop.duckdb"), "--json", cwd=clone)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["models_checked"] == 4 and report["sql_issues"] == []
    assert report["build"]["success"]


def test_check_refuses_unsafe_sql_before_running_it(repo, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    evil = clone / "dbt_project" / "models" / "evil.sql"
    evil.write_text("select * from read_text('/etc/passwd')\n")
    done = run("check", "--project", str(clone / "dbt_project"),
               "--warehouse", str(repo / "dbt_project" / "warehouse" / "shop.duckdb"), "--json", cwd=clone)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["sql_issues"][0]["kind"] == "unsafe" and report["sql_issues"][0]["model"] == "evil"


def test_check_names_the_file_when_dbt_stops_before_any_node(repo, tmp_path):
    """A missing ref stops dbt before any node runs: check names the model and its file, not only 'FAILED (0 nodes)'."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    (clone / "dbt_project" / "models" / "broken.sql").write_text("select * from {{ ref('no_such_model') }}\n")
    done = run("check", "--project", str(clone / "dbt_project"),
               "--warehouse", str(repo / "dbt_project" / "warehouse" / "shop.duckdb"), cwd=clone)
    assert done.returncode == 1
    assert "models/broken.sql" in done.stderr and "no_such_model" in done.stderr and "FAILED (0 nodes)" in done.stderr


def test_help_does_not_import_heavy_libraries():
    code = ("import sys\nfrom dataeng_crew.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('crewai', 'great_expectations', 'dbt', 'dbt.cli.main') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "propose" in done.stdout and "sample" in done.stdout and "check" in done.stdout


def test_ctrl_c_during_dbt_build_publishes_nothing(repo):
    import signal
    import time

    branches, status = git(repo, "branch", "--list"), git(repo, "status", "--porcelain")
    proc = subprocess.Popen([CLI, "propose", "weekly sales mart"], cwd=repo, stderr=subprocess.PIPE, text=True,
                            env={**os.environ})
    seen = []
    for line in proc.stderr:  # wait until the sandbox build has started
        seen.append(line)
        if "dbt build" in line:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "nothing was published" in rest
    assert git(repo, "branch", "--list") == branches
    assert git(repo, "status", "--porcelain") == status
    assert "Traceback" not in rest


def test_validate_command_prints_a_table_and_exits_zero_on_green(repo, proposed, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--branch", "dataeng-crew/daily-sales-mart", str(repo), str(clone))
    done = run("validate", "fct_daily_sales", "--project", str(clone / "dbt_project"),
               "--warehouse", str(repo / "dbt_project" / "warehouse" / "shop.duckdb"), "--json", cwd=clone)
    assert done.returncode == 0, done.stderr
    assert "dataeng-crew validate" in done.stderr and "fct_daily_sales_suite" in done.stderr
    report = json.loads(done.stdout)
    assert [r["model"] for r in report["suite_results"]] == ["fct_daily_sales"]
    assert report["suite_results"][0]["failed"] == 0


def test_target_dialect_warnings_reach_stderr_json_and_the_pr(repo):
    done = run("propose", "daily_sales mart", "--target-dialect", "postgres", "--publish", "none", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["target_dialect"] == "postgres" and out["build"]["success"] is True
    lossy = [w for w in out["dialect_warnings"] if w.startswith("stg_shop__orders: try_strptime")]
    assert lossy and f"⚠ warning (postgres): {lossy[0]}" in done.stderr
    assert lossy[0].split(": ", 1)[1][:50] in Path(out["pr"]).read_text()
    bad = run("propose", "daily_sales mart", "--target-dialect", "oracle", cwd=repo)
    assert bad.returncode == 2 and "oracle" in bad.stderr
