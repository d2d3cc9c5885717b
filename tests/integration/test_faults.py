"""Fault probe (issue 16): every fault and bad input gets one documented exit code and a message naming
the file/table/line; git, the report, `history` and `rollback` always agree; nothing is lost.

Table-driven where the faults share a shape. No test here expects a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from dataeng_crew import flow
from dataeng_crew.cli import main
from dataeng_crew.contracts import Proposal
from dataeng_crew.errors import BusyError, PublishError
from dataeng_crew.history import find_proposal, git_state
from dataeng_crew.locking import run_lock
from dataeng_crew.rollback import rollback
from dataeng_crew.tools import git_local
from dataeng_crew.tools.warehouse import load_folder
from tests.conftest import git, make_git_project


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI in-process; (exit code, stdout, stderr). A traceback anywhere fails the test."""
    result = CliRunner().invoke(main, list(args), env=env)
    out, err = result.stdout, result.stderr
    assert "Traceback" not in out + err, out + err
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, out, err


def refs_and_reflog(repo: Path) -> tuple[str, str, str]:
    """Branches with their tips, every reflog entry, and the worktree status: what a refusal must not change."""
    return (git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
            git(repo, "reflog", "--all"), git(repo, "status", "--porcelain", "--untracked-files=all"))


# -- defect 6 and 7: bad project, warehouse and data files -----------------------------------------------
def _broken_project_yml(project: Path, _wh: Path) -> list[str]:
    (project / "dbt_project.yml").write_text("name: shop\nprofile: shop\nmodels: [unclosed\n")
    return ["propose", "daily_sales mart", "--project", str(project)]


def _broken_profiles_yml(project: Path, _wh: Path) -> list[str]:
    (project / "profiles.yml").write_text("shop:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: [\n")
    return ["propose", "daily_sales mart", "--project", str(project)]


def _empty_warehouse(project: Path, wh: Path) -> list[str]:
    wh.write_bytes(b"")
    return ["propose", "daily_sales mart", "--project", str(project), "--warehouse", str(wh)]


def _corrupt_warehouse(project: Path, wh: Path) -> list[str]:
    wh.write_bytes(os.urandom(64 * 1024))
    return ["propose", "daily_sales mart", "--project", str(project), "--warehouse", str(wh)]


def _sqlite_warehouse(project: Path, wh: Path) -> list[str]:
    import sqlite3

    con = sqlite3.connect(wh)
    con.execute("create table t (a int)")
    con.commit()
    con.close()
    return ["propose", "daily_sales mart", "--project", str(project), "--warehouse", str(wh)]


def _view_over_dropped_table(project: Path, wh: Path) -> list[str]:
    con = duckdb.connect(str(wh))
    con.execute("create schema raw; create table raw.orders (id int); insert into raw.orders values (1);"
                "create view raw.order_view as select * from raw.orders; drop table raw.orders;"
                "create table raw.customers (id int)")
    con.close()
    return ["capabilities", "--warehouse", str(wh)]


def _ragged_csv(project: Path, wh: Path) -> list[str]:
    folder = wh.parent / "raw_files"
    folder.mkdir()
    (folder / "orders.csv").write_text("a,b,c\n1,2,3\n4,5\n6,7,8,9,10\n11\n")
    return ["propose", "daily_sales mart", "--project", str(project), "--warehouse", str(folder)]


def _markdown_to_missing_folder(project: Path, wh: Path) -> list[str]:
    return ["validate", "--project", str(project), "--markdown", str(wh.parent / "no" / "such" / "summary.md")]


BAD_INPUT = [  # (case, arrange → argv, exit code, message fragments)
    ("broken dbt_project.yml", _broken_project_yml, 2, ["dbt_project.yml line 4", "not valid YAML"]),
    ("broken profiles.yml", _broken_profiles_yml, 2, ["profiles.yml line", "not valid YAML"]),
    ("empty warehouse file", _empty_warehouse, 9, ["wh.duckdb", "empty"]),
    ("corrupt warehouse file", _corrupt_warehouse, 9, ["wh.duckdb", "not a DuckDB file"]),
    ("SQLite file as warehouse", _sqlite_warehouse, 9, ["wh.duckdb", "cannot open"]),
    ("view over a dropped table", _view_over_dropped_table, 9, ["raw.order_view", "view over a dropped table"]),
    ("ragged CSV", _ragged_csv, 9, ["orders.csv line 3", "2 field(s) where the header has 3"]),
    ("validate --markdown to a missing folder", _markdown_to_missing_folder, 2, ["does not exist"]),
]


@pytest.mark.parametrize("case,arrange,code,fragments", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_gets_a_documented_exit_code_and_a_message_naming_it(case, arrange, code, fragments, git_project,
                                                                         tmp_path):
    repo = git_project.parent
    argv = arrange(git_project, tmp_path / "wh.duckdb")
    before = refs_and_reflog(repo)
    exit_code, out, err = cli(*argv, "--json")
    assert exit_code == code, err
    for fragment in fragments:
        assert fragment in " ".join(err.split()), err
    data = json.loads(out)  # --json: one object with status and error, even on failure
    assert data["status"] == "failed" and data["error"] and data["exit_code"] == code
    assert git(repo, "for-each-ref", "--format=%(refname) %(objectname)") == before[0]  # nothing published


def test_a_warehouse_locked_by_another_writer_is_named(tmp_path):
    wh = tmp_path / "busy.duckdb"
    duckdb.connect(str(wh)).execute("create table t as select 1 as id").close()
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(wh)!r}); "
                               "print('ready', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        exit_code, out, err = cli("capabilities", "--warehouse", str(wh), "--json")
    finally:
        holder.kill()
        holder.wait()
    assert exit_code == 9
    assert "busy.duckdb" in err and "locked by another process" in err


def test_ragged_csv_is_refused_by_load_folder_and_a_good_one_loads(tmp_path):
    from dataeng_crew.errors import WarehouseError

    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "good.csv").write_text("id;name\n1;a\n2;b\n")
    target = load_folder(folder, tmp_path / "ok.duckdb")
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select count(*), count(distinct name) from raw_files.good").fetchone() == (2, 2)
    (folder / "bad.csv").write_text("id,name\n1,a\n2,b,extra\n")
    with pytest.raises(WarehouseError, match=r"bad\.csv line 3: 3 field\(s\) where the header has 2"):
        load_folder(folder, tmp_path / "bad.duckdb")
    assert not (tmp_path / "bad.duckdb").exists()


def test_read_only_repository_is_a_clear_error(sample_warehouse):
    """Run as an unprivileged user on a repository it can read but not write (root ignores file modes)."""
    import tempfile

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the CLI as an unprivileged user")
    outside = Path(tempfile.mkdtemp(prefix="dataeng-crew-readonly-"))  # pytest's tmp folders are private to root
    try:
        outside.chmod(0o755)
        project = make_git_project(outside / "repo", sample_warehouse)
        home = outside / "home"
        home.mkdir()
        home.chmod(0o777)
        before = refs_and_reflog(project.parent)
        done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               str(Path(sys.executable).with_name("dataeng-crew")), "propose", "daily_sales mart",
                               "--project", str(project), "--json"],
                              capture_output=True, text=True, env={**os.environ, "HOME": str(home)}, timeout=120)
        assert "Traceback" not in done.stderr + done.stdout, done.stderr
        assert done.returncode == 2, done.stderr
        assert ".dataeng-crew" in done.stderr and "cannot write the state folder" in done.stderr
        assert json.loads(done.stdout)["status"] == "failed"
        assert refs_and_reflog(project.parent) == before
    finally:
        shutil.rmtree(outside, ignore_errors=True)


# -- defects 2 and 10: a person's commits, concurrent runs ----------------------------------------------
def test_rerun_refuses_to_move_a_branch_holding_a_persons_commit(git_project):
    repo = git_project.parent
    git(repo, "branch", "dataeng-crew/daily-sales-mart")
    git(repo, "switch", "-q", "dataeng-crew/daily-sales-mart")
    (git_project / "models" / "mine.sql").write_text("select 1 as id\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "my own model")
    mine = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "main")
    assert git_local.foreign_commits(repo, "dataeng-crew/daily-sales-mart", git(repo, "rev-parse", "main")) == [mine]
    before = refs_and_reflog(repo)
    started = time.perf_counter()
    exit_code, out, err = cli("propose", "daily_sales mart", "--project", str(git_project), "--json")
    assert exit_code == 7
    assert time.perf_counter() - started < 30  # refused before the dbt build, not after it
    text = " ".join(err.split())
    assert mine[:7] in text and "my own model" in text and "dataeng-crew revise" in text
    assert "git branch -D dataeng-crew/daily-sales-mart" in text
    assert refs_and_reflog(repo) == before
    assert json.loads(out)["status"] == "failed"


def test_a_second_run_waits_briefly_then_names_the_first(git_project):
    ws = flow.resolve_workspace(git_project)
    with run_lock(ws.state_dir, "propose daily_sales mart"):
        started = time.perf_counter()
        exit_code, out, err = cli("propose", "daily_sales mart", "--project", str(git_project), "--json",
                                  env={"DATAENG_CREW_LOCK_WAIT": "0.5"})
        waited = time.perf_counter() - started
    assert exit_code == BusyError.exit_code == 10
    assert "another dataeng-crew run" in err and "propose daily_sales mart" in err and "cannot lock ref" not in err
    assert 0.5 <= waited < 20
    with run_lock(ws.state_dir, "again", wait=0):  # released: the next run gets it at once
        pass


# -- defect 4: rollback agrees with git ----------------------------------------------------------------
def _published(ws, request: str, proposal_id: str) -> Proposal:
    """A published proposal as the flow leaves it: a trailer commit on its branch and its report."""
    folder = ws.state_dir / "proposals" / proposal_id
    folder.mkdir(parents=True)
    branch = f"dataeng-crew/{flow.slugify(request)}"
    base = git_local.head_commit(ws.repo)
    commit = git_local.commit_to_branch(ws.repo, base, branch, {f"dbt_project/models/{flow.slugify(request)}.sql":
                                                                "select 1 as id\n"}, f"dataeng-crew: {request}",
                                        proposal_id=proposal_id)
    proposal = Proposal(proposal_id=proposal_id, request=request, created_at="2026-11-30T00:00:00+00:00",
                        brain="deterministic", proposal_dir=str(folder), status="published", branch=branch,
                        commit=commit)
    (folder / "report.json").write_text(proposal.model_dump_json(indent=2))
    return proposal


def test_rollback_twice_does_not_touch_an_older_proposal(git_project):
    ws = flow.resolve_workspace(git_project)
    older = _published(ws, "weekly sales mart", "20261130T100000-weekly-sales-mart")
    newer = _published(ws, "daily sales mart", "20261130T110000-daily-sales-mart")
    assert rollback(ws).proposal_id == newer.proposal_id
    again = rollback(ws)
    assert again.action == "nothing_to_do" and "rolled back already" in again.message
    assert git_local.branch_commit(ws.repo, older.branch) == older.commit  # the older proposal is untouched


def test_rollback_refuses_while_the_branch_is_checked_out(git_project):
    ws = flow.resolve_workspace(git_project)
    proposal = _published(ws, "daily sales mart", "20261130T110000-daily-sales-mart")
    git(ws.repo, "switch", "-q", proposal.branch)
    before = refs_and_reflog(ws.repo)
    exit_code, _out, err = cli("rollback", "--project", str(git_project))
    assert exit_code == 7 and "is checked out" in err and "merged" not in err
    assert refs_and_reflog(ws.repo) == before


def test_ambiguous_prefix_names_the_candidates_and_an_exact_id_wins(git_project):
    ws = flow.resolve_workspace(git_project)
    first = _published(ws, "daily sales mart", "20261130T110000-daily-sales-mart")
    second = _published(ws, "daily sales mart by store", "20261130T110000-daily-sales-mart-2")
    with pytest.raises(PublishError, match="matches 2 proposals") as info:
        find_proposal(ws.state_dir, "20261130T11")
    assert first.proposal_id in str(info.value) and second.proposal_id in str(info.value)
    assert find_proposal(ws.state_dir, first.proposal_id).proposal_id == first.proposal_id
    exit_code, _out, err = cli("rollback", "20261130T11", "--project", str(git_project))
    assert exit_code == 7 and "matches 2 proposals" in err


# -- defects 1, 8 (cleaning) and 9: interrupted runs ---------------------------------------------------
@pytest.mark.slow
def test_interrupt_right_after_the_ref_is_written_is_reported_as_published(git_project, monkeypatch):
    """Ctrl-C between `update-ref` and the report: the report, history and rollback follow git."""
    repo = git_project.parent
    real = git_local.commit_to_branch

    def commit_then_interrupt(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(git_local, "commit_to_branch", commit_then_interrupt)
    request = "daily_sales mart\u202e\u200b\x07"  # bidi override, zero-width space, a bell
    with pytest.raises(KeyboardInterrupt) as info:
        flow.propose(request, project=git_project)
    proposal = info.value.proposal
    tip = git_local.branch_commit(repo, "dataeng-crew/daily-sales-mart")
    assert tip is not None and proposal.commit == tip and proposal.status == "published"
    assert "after the branch was written" in proposal.error and "rollback" in proposal.error
    report = json.loads((Path(proposal.proposal_dir) / "report.json").read_text())
    assert report["status"] == "published" and report["commit"] == tip
    message = git(repo, "log", "-1", "--format=%B", tip)
    assert git_local.trailer_of(message) == proposal.proposal_id
    changed = git(repo, "diff", "--name-only", "main", tip).splitlines()
    for text in [message, *(git(repo, "show", f"{tip}:{path}") for path in changed)]:
        assert not any(ch in text for ch in "\u202e\u200b\x07"), text[:200]
    ws = flow.resolve_workspace(git_project)
    assert git_state(repo, find_proposal(ws.state_dir, None)) == "branch at commit"
    assert rollback(ws).action == "branch_deleted"
    assert git_local.branch_commit(repo, "dataeng-crew/daily-sales-mart") is None


def test_early_interrupt_leaves_a_report_not_an_empty_folder(git_project, monkeypatch):
    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(flow, "resolve_warehouse", interrupted)
    exit_code, out, err = cli("propose", "daily_sales mart", "--project", str(git_project), "--json")
    assert exit_code == 130 and "nothing was published" in err
    data = json.loads(out)
    assert data["status"] == "interrupted" and "nothing was published" in data["error"]
    folders = list((git_project.parent / ".dataeng-crew" / "proposals").iterdir())
    assert len(folders) == 1 and json.loads((folders[0] / "report.json").read_text())["status"] == "interrupted"


def test_request_is_cleaned_of_invisible_characters():
    assert flow.clean_request(" daily\u202e sales\u2066 mart\u200b\n\tby\x1b[31m store ") == "daily sales mart by store"
    assert flow.clean_request("für österreich 仅限中国") == "für österreich 仅限中国"


@pytest.mark.slow
def test_sigterm_during_the_build_is_handled_like_ctrl_c(git_project, tmp_path):
    import signal

    repo = git_project.parent
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    before = refs_and_reflog(repo)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("dataeng-crew")), "propose", "daily_sales mart",
                             "--json"], cwd=git_project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp)})
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "dbt build" in line:
            break
    time.sleep(0.3)  # inside the build (a second or two now that dbt parses only the new files)
    proc.send_signal(signal.SIGTERM)
    out, rest = proc.communicate(timeout=120)
    assert proc.returncode == 143, "".join(seen) + rest
    assert "terminated" in rest and "nothing was published" in rest and "Traceback" not in rest
    data = json.loads(out)
    assert data["status"] == "interrupted" and "SIGTERM" in data["error"]
    report = json.loads(Path(data["report"]).read_text())
    assert report["status"] == "interrupted"
    audit = [json.loads(line) for line in (repo / ".dataeng-crew" / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["outcome"] == "terminated"
    assert not list(tmp.glob("dataeng-crew-index-*"))
    assert refs_and_reflog(repo) == before


# -- defect 5: validate ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_validate_an_unknown_model_fails(git_project):
    exit_code, out, err = cli("validate", "no_such_model", "--project", str(git_project), "--json")
    assert exit_code == 2 and "no model named no_such_model" in err
    assert json.loads(out)["status"] == "failed"


def test_github_branch_with_a_persons_commit_is_never_force_moved():
    from dataeng_crew.tools import github_pr
    from tests.fakes.github_server import FakeGitHub

    token, name, branch = "ghp_faultprobe0123456789abcdefFAKE", "acme/shop", "dataeng-crew/daily-sales-mart"
    options = github_pr.GithubOptions(throttle=False, retries=1, max_wait=0.5)
    files = {"dbt_project/models/marts/fct_daily_sales.sql": "select 1 as id\n"}

    def publish(body: str) -> github_pr.PublishResult:
        return github_pr.publish(github_pr.GithubTarget(name, server.base_url), options, files=files, token=token,
                                 branch=branch, title="dataeng-crew: daily_sales mart", body=body,
                                 message="dataeng-crew: daily_sales mart", approval_kinds=[])

    with FakeGitHub(token=token) as server:
        server.create_repo(name, {"README.md": "# shop\n"})
        first = publish("first")
        second = publish("second")  # the tool's own commit (trailer) is replaced: converges to one commit
        remote = server.repos[name]
        assert remote.refs[f"refs/heads/{branch}"] == second.commit and first.branch == second.branch
        tree = remote.get(second.commit, "commit")["tree"]
        fix = remote.put_commit(tree, [second.commit], "reviewer: fix the grain")  # a person's commit, no trailer
        remote.refs[f"refs/heads/{branch}"] = fix
        with pytest.raises(PublishError, match="did not make") as info:
            publish("third")
        assert fix[:10] in str(info.value) and "dataeng-crew revise" in str(info.value)
        assert remote.refs[f"refs/heads/{branch}"] == fix


@pytest.mark.slow
def test_a_table_named_with_a_quote_is_declared_with_identifier_and_builds(tmp_path):
    import yaml

    from tests.conftest import SAMPLE_PROJECT

    wh = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(wh))
    con.execute("create schema raw_shop")
    con.execute('create table raw_shop."ord""ers" as select range as order_id, range % 10 as customer_id, '
                "(range * 3.5)::decimal(10, 2) as amount from range(200)")
    con.execute("create table raw_shop.customers as select range as customer_id, 'c' || range as name from range(10)")
    con.close()
    project = tmp_path / "project"
    shutil.copytree(SAMPLE_PROJECT, project, ignore=shutil.ignore_patterns("warehouse", "target", "logs"))
    proposal = flow.propose("staging models", project=project, warehouse=wh, publish="none")
    assert proposal.checks.build.success
    staged = {m.name: m for m in proposal.models}
    assert "source('shop', 'ord_ers')" in staged["stg_shop__ord_ers"].sql
    table = next(t for s in proposal.sources for t in s.tables if t.identifier)
    assert (table.name, table.identifier) == ("ord_ers", 'ord"ers')
    sandbox = Path(proposal.proposal_dir) / "sandbox" / "project" / "models" / "staging" / "shop"
    declared = yaml.safe_load((sandbox / "_shop__sources.yml").read_text())["sources"][0]["tables"]
    assert {"name": "ord_ers", "identifier": 'ord""ers', "quoting": {"identifier": True}}.items() <= \
        next(t for t in declared if t["name"] == "ord_ers").items()
