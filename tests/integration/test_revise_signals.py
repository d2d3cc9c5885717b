"""`revise` under Ctrl-C and SIGTERM says what git holds, like `propose`: the commit when the branch ref was
written before the signal, "nothing was committed" otherwise; 130 for Ctrl-C, 143 for SIGTERM; `--json` is one
object; and revise holds the repository's run lock from reading the tip to writing the ref."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from dataeng_crew import flow
from dataeng_crew import revise as revising
from dataeng_crew.cli import main
from dataeng_crew.errors import BusyError, Terminated
from dataeng_crew.tools import git_local
from tests.conftest import git

BRANCH = "dataeng-crew/daily-sales-mart"


@pytest.fixture()
def proposed(git_project):
    proposal = flow.propose("daily_sales mart", project=git_project, publish="local")
    assert proposal.status == "published"
    return git_project, git(git_project.parent, "rev-parse", BRANCH)


def _revise_cli(project, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["revise", BRANCH, "--project", str(project), "--comment", "make it weekly",
                                       "--json", *extra])
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_sigterm_after_the_ref_was_written_reports_the_commit(proposed, monkeypatch):
    project, tip = proposed
    real = git_local.commit_on_top

    def commit_then_killed(*args, **kwargs):
        real(*args, **kwargs)  # the ref moved; the signal lands before revise learns the commit id
        raise Terminated()

    monkeypatch.setattr(git_local, "commit_on_top", commit_then_killed)
    code, out, err = _revise_cli(project)
    now = git(project.parent, "rev-parse", BRANCH)
    assert code == 143 and now != tip
    data = json.loads(out)  # one object
    assert data["status"] == "interrupted" and data["commit"] == now
    assert "holds revision 1" in data["error"] and now[:10] in err
    record = json.loads(next((project.parent / ".dataeng-crew" / "revisions").glob("*/revision.json")).read_text())
    assert record["status"] == "interrupted" and record["commit"] == now


def test_ctrl_c_before_the_commit_says_nothing_was_committed(proposed, monkeypatch):
    project, tip = proposed

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(revising, "data_diffs", interrupted)  # after the sandbox build, before the commit
    code, out, _err = _revise_cli(project)
    assert code == 130 and git(project.parent, "rev-parse", BRANCH) == tip
    data = json.loads(out)
    assert data["status"] == "interrupted" and data["commit"] is None and "nothing was committed" in data["error"]


def test_revise_waits_for_the_run_lock_of_another_run(proposed, monkeypatch):
    project, tip = proposed
    monkeypatch.setenv("DATAENG_CREW_LOCK_WAIT", "0")
    ws = flow.resolve_workspace(project)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from dataeng_crew.locking import run_lock\n"
                               "with run_lock(Path(sys.argv[1]), 'propose daily sales'):\n"
                               "    print('held', flush=True); time.sleep(60)", str(ws.state_dir)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BusyError, match="another dataeng-crew run .*propose daily sales"):
            revising.revise(BRANCH, project=project, comments=["make it weekly"])
    finally:
        holder.kill()
        holder.wait()
    assert git(project.parent, "rev-parse", BRANCH) == tip
    assert revising.revise(BRANCH, project=project, comments=["make it weekly"]).status == "revised"  # released


def test_a_persons_edit_of_the_generated_mart_is_kept_and_named(proposed):
    """The person's edited mart stays as they wrote it: the round that would rewrite it is refused naming the file
    and the commit (it used to stop with dbt's "depends on a node named 'stg_shop__orders' which was not found")."""
    project, tip = proposed
    repo = project.parent
    git(repo, "checkout", "-q", BRANCH)
    mart = project / "models" / "marts" / "fct_daily_sales.sql"
    mart.write_text(mart.read_text() + "\n-- reviewed by alice: keep the daily grain\n")
    git(repo, "commit", "-qam", "alice: a note in the mart")
    person = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    result = revising.revise(BRANCH, project=project, comments=["make it weekly"])
    assert result.status == "nothing_applied" and result.commit is None
    reply = result.outcomes[0].reply
    assert "models/marts/fct_daily_sales.sql" in reply and person[:10] in reply and "by hand" in reply
    assert git(repo, "rev-parse", BRANCH) == person
    assert "-- reviewed by alice" in git(repo, "show", f"{BRANCH}:dbt_project/models/marts/fct_daily_sales.sql")


def test_history_lists_a_revision_and_rollback_undoes_it_with_one_commit(proposed):
    project, tip = proposed
    repo = project.parent
    result = revising.revise(BRANCH, project=project, comments=["make it weekly"])
    assert result.status == "revised"
    runner = CliRunner()
    listed = json.loads(runner.invoke(main, ["history", "--project", str(project), "--json"]).stdout)
    assert [(r["round"], r["commit"], r["in_git"]) for r in listed["revisions"]] == [(1, result.commit,
                                                                                       "branch at commit")]
    undone = runner.invoke(main, ["rollback", "--project", str(project), "--json"])
    assert undone.exit_code == 0, undone.stdout + undone.stderr
    data = json.loads(undone.stdout)
    assert data["action"] == "revision_reverted"
    now = git(repo, "rev-parse", BRANCH)
    assert git(repo, "rev-parse", f"{now}^") == result.commit  # ONE commit on top of the revision
    models = git(repo, "ls-tree", "-r", "--name-only", BRANCH, "dbt_project/models/marts").splitlines()
    assert models == git(repo, "ls-tree", "-r", "--name-only", tip, "dbt_project/models/marts").splitlines()
    for path in models:
        assert git(repo, "show", f"{BRANCH}:{path}") == git(repo, "show", f"{tip}:{path}")
    again = revising.revise(BRANCH, project=project, comments=["make it weekly"])
    assert again.status == "no_new_feedback"  # the feedback the undone revision answered stays answered


def test_a_secret_on_the_command_line_or_in_the_request_reaches_no_file(git_project, monkeypatch):
    """A password typed on the command line (`--llm-base-url http://user:PASS@host/v1`) or a token pasted into the
    request reaches no file the run writes: not dbt's log (dbt logs sys.argv), the report, the lineage, the lock,
    the proposal's folder name, the commit."""
    password, token = "S3cretPassw0rdXyz", "ghp_ABCDEFGH12345678abcd"
    monkeypatch.setattr(sys, "argv", ["dataeng-crew", "propose", "daily_sales mart", "--llm-base-url",
                                      f"http://alice:{password}@127.0.0.1:9/v1"])
    proposal = flow.propose(f"daily_sales mart {token}", project=git_project, publish="local")
    assert proposal.status == "published" and token not in proposal.request
    repo = git_project.parent
    for path in (repo / ".dataeng-crew").rglob("*"):
        assert password not in str(path) and token not in str(path)
        if path.is_file() and path.stat().st_size < 50_000_000:
            data = path.read_bytes()
            assert password.encode() not in data and token.encode() not in data, path
    assert token not in git(repo, "log", "--all", "--format=%B")
