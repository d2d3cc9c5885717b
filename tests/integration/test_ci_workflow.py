"""The PR workflow `init-ci` installs: valid YAML with the expected shape, and its `run:` steps pass when
executed locally, the same commands in a fresh clone of a repository holding a published proposal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dataeng_crew.ci import WORKFLOW_PATH, install_workflow, render_workflow
from dataeng_crew.errors import ConfigError
from tests.conftest import REPO, git

SETUP = "dataeng-crew sample --project dbt_project --scale 2000"


def _on(doc: dict) -> dict:
    return doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on:` key as True


def test_workflow_is_valid_yaml_with_the_expected_steps():
    doc = yaml.safe_load(render_workflow("dbt_project", "", SETUP))
    assert "pull_request" in _on(doc)
    assert doc["permissions"] == {"contents": "read"}
    job = doc["jobs"]["validate"]
    assert job["env"]["DBT_PROJECT_DIR"] == "dbt_project" and job["env"]["WAREHOUSE_SETUP"] == SETUP
    steps = job["steps"]
    uses = [s["uses"] for s in steps if "uses" in s]
    assert uses == ["actions/checkout@v4", "actions/setup-python@v5"]
    assert next(s for s in steps if "setup-python" in s.get("uses", ""))["with"]["python-version"] == "3.11"
    runs = [s["run"] for s in steps if "run" in s]
    assert "pip install" in runs[0] and "dataeng-crew" in runs[0] and "dbt-duckdb" in runs[0]
    validate = runs[-1]
    assert "dataeng-crew validate" in validate and "--state" in validate and "$GITHUB_STEP_SUMMARY" in validate
    assert any("dbt parse" in r and "$BASE_SHA" in r for r in runs)  # the base manifest for slim CI
    tricky = yaml.safe_load(render_workflow("my project", 'data/"raw"', "echo 'a: b' # c"))["jobs"]["validate"]["env"]
    assert tricky["DBT_PROJECT_DIR"] == "my project" and tricky["WAREHOUSE"] == 'data/"raw"'
    assert tricky["WAREHOUSE_SETUP"] == "echo 'a: b' # c"


def test_this_repos_own_ci_runs_the_tests_on_every_pr():
    doc = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    assert "pull_request" in _on(doc)
    assert any(s.get("run") == ".ci/run" for s in doc["jobs"]["test"]["steps"])


def test_init_ci_writes_once_and_refuses_to_clobber(tmp_path):
    project = tmp_path / "dbt_project"
    project.mkdir()
    path = install_workflow(tmp_path, project, setup=SETUP)
    assert path == tmp_path / WORKFLOW_PATH and yaml.safe_load(path.read_text())
    assert install_workflow(tmp_path, project, setup=SETUP) == path  # same content: fine
    with pytest.raises(ConfigError, match="--force"):
        install_workflow(tmp_path, project, setup="other")
    install_workflow(tmp_path, project, setup="other", force=True)
    with pytest.raises(ConfigError, match="not inside"):
        install_workflow(tmp_path / "elsewhere", project)


@pytest.mark.slow
def test_workflow_steps_run_green_in_a_fresh_clone(published, tmp_path):
    proposal, repo, *_ = published
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    git(clone, "checkout", "-q", proposal.branch)
    base = git(clone, "rev-parse", "origin/main")
    proc = subprocess.run([sys.executable, "-m", "dataeng_crew.cli", "init-ci", "--project", str(clone / "dbt_project"),
                           "--setup", SETUP], capture_output=True, text=True, cwd=clone)
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load((clone / WORKFLOW_PATH).read_text())
    job = doc["jobs"]["validate"]
    summary = tmp_path / "step_summary.md"
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, **{k: str(v) for k, v in job["env"].items()}, "GITHUB_STEP_SUMMARY": str(summary),
           "RUNNER_TEMP": str(runner_temp), "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    ran = []
    for step in job["steps"]:
        if "run" not in step or "pip install" in step["run"]:
            continue  # actions (checkout, setup-python) and the install step: done by this test's environment
        step_env = {**env, **{k: str(v) for k, v in (step.get("env") or {}).items()}}
        if "BASE_SHA" in step_env:
            step_env["BASE_SHA"] = base  # ${{ github.event.pull_request.base.sha }}
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=clone,
                                env=step_env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{step['name']}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        ran.append(step["name"])
    assert ran == ["Prepare the warehouse", "Base manifest for slim CI", "dataeng-crew validate"]
    assert (runner_temp / "dataeng-crew-state" / "manifest.json").is_file()
    text = summary.read_text()
    assert "dataeng-crew validate: ✅ passed" in text and "Slim CI" in text
    assert "`fct_daily_sales`" in text and "GX suite" in text
    assert "## Data diff" in text and "| `fct_daily_sales` | added | – → " in text  # --diff-base: new on this PR
    assert git(clone, "status", "--porcelain") == "?? .github/"  # only the workflow file; the warehouse is ignored


@pytest.mark.slow
def test_slim_validate_with_defer_builds_only_the_modified_mart(published, tmp_path):
    """--state + --defer: only state:modified+ is built; unmodified parents are read from the warehouse."""
    from dataeng_crew.checks import validate_project

    proposal, repo, *_ = published
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "-b", proposal.branch, str(repo), str(clone)], check=True)
    project = clone / "dbt_project"
    state = tmp_path / "state"
    parse = subprocess.run([str(Path(sys.executable).parent / "dbt"), "parse", "--project-dir", str(project),
                            "--profiles-dir", str(project), "--target-path", str(state)],
                           capture_output=True, text=True, timeout=300)
    assert parse.returncode == 0, parse.stdout[-2000:]
    mart = next(m for m in proposal.models if m.layer == "marts")
    sql = project / mart.path
    sql.write_text(sql.read_text() + "\n-- reviewed\n")  # the only change against the base manifest
    # the proposal's validation warehouse already holds the base's built models (the deferral target)
    report = validate_project(project, Path(proposal.warehouse), state=state, defer=True)
    assert report.passed, report.build.error if report.build else None
    built = {n.unique_id.split(".")[-1] for n in report.build.nodes if n.resource_type == "model"}
    assert built == {mart.name}
    tests = [n for n in report.build.nodes if n.resource_type == "test"]
    assert tests and all(n.attached_to == mart.name for n in tests)  # the staging models' tests did not run
    assert [r.model for r in report.suite_results] == [mart.name]


def test_init_ci_on_target_reads_the_profiles_env_vars_from_secrets(tmp_path):
    from dataeng_crew.ci import TARGET_WORKFLOW_PATH, install_target_workflow

    project = tmp_path / "analytics"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: shop\nprofile: shop\nversion: '1.0'\nconfig-version: 2\n")
    (project / "profiles.yml").write_text(
        "shop:\n  target: prod\n  outputs:\n    prod:\n      type: postgres\n"
        "      host: \"{{ env_var('SHOP_PG_HOST') }}\"\n      port: 5432\n      user: analyst\n"
        "      password: \"{{ env_var('SHOP_PG_PASSWORD') }}\"\n      dbname: shop\n      schema: analytics\n"
        "    dev:\n      type: duckdb\n      path: \"{{ env_var('DEV_ONLY_PATH', 'x.duckdb') }}\"\n")
    path, secrets = install_target_workflow(tmp_path, project)
    assert path == tmp_path / TARGET_WORKFLOW_PATH and secrets == ["SHOP_PG_HOST", "SHOP_PG_PASSWORD"]
    workflow = yaml.safe_load(path.read_text())
    job = workflow["jobs"]["on-target"]
    assert job["env"]["SHOP_PG_PASSWORD"] == "${{ secrets.SHOP_PG_PASSWORD }}" and "DEV_ONLY_PATH" not in job["env"]
    assert job["env"]["DBT_PROJECT_DIR"] == "analytics" and job["env"]["DBT_PROFILES_DIR"] == "analytics"
    steps = " ".join(s.get("run", "") for s in job["steps"])
    assert "dbt-postgres" in steps and "validate --on-target" in steps and "--run-id" in steps
    (project / "profiles.yml").write_text((project / "profiles.yml").read_text().replace("target: prod", "target: dev"))
    with pytest.raises(ConfigError, match="PostgreSQL or Spark"):
        install_target_workflow(tmp_path, project, force=True)
