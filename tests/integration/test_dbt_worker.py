"""The dbt worker: dbt commands run in a process started ahead, with the same results as in this process, the
same clean environment, manifests kept there, and Ctrl-C stopping the command with the worker."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import duckdb
import pytest

from dataeng_crew.tools import dbt_runner
from dataeng_crew.tools.dbt_runner import DbtWorker, WorkerManifest, run_dbt


def _project(root: Path, model_sql: str = "select 1 as one") -> Path:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: tiny\nversion: '1.0'\nprofile: tiny\nconfig-version: 2\n")
    (root / "profiles.yml").write_text(f"tiny:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
                                       f"      path: '{root / 'tiny.duckdb'}'\n      threads: 1\n")
    (root / "models" / "one.sql").write_text(model_sql)
    return root


@pytest.fixture()
def worker(monkeypatch):
    fresh = DbtWorker()
    monkeypatch.setattr(dbt_runner, "WORKER", fresh)
    fresh.spawn()
    yield fresh
    fresh.close()


def test_a_command_runs_in_the_worker_with_the_same_result_as_here(tmp_path, worker, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_worker_secret")
    project = _project(tmp_path / "p", "select '{{ env_var(\"GITHUB_TOKEN\", \"absent\") }}' as token, "
                                        "'{{ env_var(\"TINY_SETTING\", \"unset\") }}' as setting")
    monkeypatch.setenv("TINY_SETTING", "set-after-the-worker-started")
    assert worker.running()
    remote = run_dbt(["build"], project, project, target_path=project / "target", log_path=project / "logs")
    assert remote.success and [n.status for n in remote.nodes] == ["success"]
    with duckdb.connect(str(project / "tiny.duckdb"), read_only=True) as con:
        # secrets never reach dbt; the rest of the environment is this process's at the time of the call
        assert con.execute("select token, setting from one").fetchone() == ("absent", "set-after-the-worker-started")
    worker.close()
    local = run_dbt(["build"], project, project, target_path=project / "target", log_path=project / "logs")
    assert local.success and [(n.unique_id, n.status) for n in local.nodes] == \
        [(n.unique_id, n.status) for n in remote.nodes]


def test_a_parsed_manifest_stays_in_the_worker_and_is_reused(tmp_path, worker):
    project = _project(tmp_path / "p")
    keep: dict = {}
    parsed = run_dbt(["parse"], project, project, target_path=project / "target", log_path=project / "logs",
                     keep=keep)
    assert parsed.success and isinstance(keep["manifest"], WorkerManifest)
    (project / "models" / "one.sql").write_text("select 2 as two")  # not parsed again: the kept manifest runs
    run = run_dbt(["run"], project, project, target_path=project / "target", log_path=project / "logs",
                  manifest=keep["manifest"])
    assert run.success
    with duckdb.connect(str(project / "tiny.duckdb"), read_only=True) as con:
        assert con.execute("select * from one").fetchone() == (1,)


def test_a_dead_worker_leaves_the_command_to_this_process(tmp_path, worker):
    project = _project(tmp_path / "p")
    os.kill(worker._child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while worker.running() and time.monotonic() < deadline:  # running() reaps it once it is gone
        time.sleep(0.05)
    result = run_dbt(["build"], project, project, target_path=project / "target", log_path=project / "logs")
    assert result.success and not worker.running()


def test_ctrl_c_while_the_worker_builds_stops_the_command_and_the_worker(tmp_path, worker):
    project = _project(tmp_path / "p", "select count(*) as n from range(20000000000)")  # runs for minutes
    pid = worker._child.pid
    assert pid is not None
    threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_dbt(["build"], project, project, target_path=project / "target", log_path=project / "logs")
    assert time.monotonic() - started < 30
    assert not worker.running()
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)
