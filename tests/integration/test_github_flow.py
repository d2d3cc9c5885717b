"""`propose --publish github` end to end: the real flow (real dbt build) against the fake GitHub server,
then a re-run through the installed CLI; the token never leaks anywhere."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dataeng_crew.errors import ConfigError
from tests.conftest import git, make_git_project
from tests.fakes.github_server import FakeGitHub
from dataeng_crew.tools import github_pr

TOKEN = "ghp_FLOWsecret9876543210abcdefFAKE"
REPO = "acme/shop"
BRANCH = "dataeng-crew/daily-sales-mart"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def github_run(tmp_path_factory, sample_warehouse):
    """One propose through the flow, then the same request again through the CLI, both to the fake."""
    project = make_git_project(tmp_path_factory.mktemp("gh") / "repo", sample_warehouse)
    repo_dir = project.parent
    git(repo_dir, "remote", "add", "origin", "git@github.com:acme/shop.git")  # the repo is inferred from origin
    fake = FakeGitHub(token=TOKEN).start()
    fake.create_repo(REPO, {"README.md": "# shop\n", "CODEOWNERS": "dbt_project/models/marts/ @acme/analytics\n"})
    old = os.environ.get("GITHUB_TOKEN")
    os.environ["GITHUB_TOKEN"] = TOKEN
    try:
        from dataeng_crew import flow

        stages: list[str] = []
        options = github_pr.GithubOptions(api_url=fake.base_url, throttle=False, retries=2, max_wait=0.5)
        first = flow.propose("daily_sales mart", project=project, publish="github", github=options,
                             progress=stages.append)
        remote_first = fake.repos[REPO].refs[f"refs/heads/{BRANCH}"]
        prs_after_first = [dict(p) for p in fake.repos[REPO].pulls]
        cli = subprocess.run(["dataeng-crew", "propose", "daily_sales mart", "--project", str(project),
                              "--github-url", fake.base_url, "--ready", "--json"],
                             capture_output=True, text=True, env={**os.environ, "GITHUB_TOKEN": TOKEN}, timeout=600)
    finally:
        if old is None:
            os.environ.pop("GITHUB_TOKEN", None)
        else:
            os.environ["GITHUB_TOKEN"] = old
    yield {"fake": fake, "project": project, "repo": repo_dir, "first": first, "stages": stages, "cli": cli,
           "remote_first": remote_first, "prs_after_first": prs_after_first}
    fake.stop()


def test_first_run_one_branch_one_commit_with_all_files_one_pr(github_run):
    fake, first = github_run["fake"], github_run["first"]
    repo = fake.repos[REPO]
    assert first.status == "published" and github_run["stages"][-1] == "publish (GitHub pull request)"
    pr_ref = first.pull_request
    assert pr_ref is not None and pr_ref.repo == REPO and pr_ref.number == 1 and pr_ref.branch == BRANCH
    tip = github_run["remote_first"]
    assert pr_ref.commit == tip
    commit = repo.get(tip, "commit")
    assert commit["parents"] == [repo.refs["refs/heads/main"]]  # ONE commit on top of the base
    base_files = set(repo.files_at("main"))
    assert set(repo.files_at(tip)) - base_files == set(first.files)  # the tree holds exactly the proposal's files
    local = git(github_run["repo"], "ls-tree", "-r", "--name-only", first.commit).splitlines()
    assert set(first.files) <= set(local)  # the same files on the local branch
    pr = github_run["prs_after_first"][0]
    assert len(github_run["prs_after_first"]) == 1 and pr["draft"] is True and pr["head"] == BRANCH
    body = Path(first.pr).read_text()
    assert pr["body"] == body.rstrip("\n") or pr["body"] == body
    assert not [p for p in repo.files_at(tip) if "/proposals/" in p]  # the PR text is the PR's, not a project file
    for section in ("Plan: how the request was read", "```mermaid", "Models, columns and lineage", "Validation:",
                    "Roll back", "Review it on a fresh clone"):
        assert section in pr["body"]
    assert pr["title"] == "dataeng-crew: daily_sales mart"
    expected = ["dataeng-crew", *(["needs-governance-approval"] if any(a.kind == "governance" for a in first.approvals)
                                  else [])]
    assert pr["labels"][:len(expected)] == expected
    assert pr["teams"] == ["analytics"]  # CODEOWNERS at the repo root, matched on the changed mart paths


def test_rerun_through_the_cli_updates_the_same_branch_and_pr(github_run):
    cli, fake = github_run["cli"], github_run["fake"]
    assert cli.returncode == 0, cli.stderr[-2000:]
    out = json.loads(cli.stdout)
    repo = fake.repos[REPO]
    assert [b for b in repo.branches() if b != "main"] == [BRANCH]
    assert len(repo.pulls) == 1 and repo.pulls[0]["state"] == "open"
    assert out["pull_request"]["number"] == 1 and out["pull_request"]["commit"] == repo.refs[f"refs/heads/{BRANCH}"]
    assert out["pull_request"]["commit"] != github_run["remote_first"]  # a fresh commit on the current base
    assert repo.get(out["pull_request"]["commit"], "commit")["parents"] == [repo.refs["refs/heads/main"]]
    assert "pull request #1" in cli.stderr and "Proposal `" + out["proposal_id"] in repo.pulls[0]["body"]
    assert len(fake.calls("POST", r"/pulls$")) == 1


def test_token_never_leaks(github_run):
    fake, repo_dir = github_run["fake"], github_run["repo"]
    cli = github_run["cli"]
    assert TOKEN not in cli.stdout and TOKEN not in cli.stderr
    for pr in fake.repos[REPO].pulls:
        assert TOKEN not in json.dumps(pr)
    for text in fake.repos[REPO].files_at(BRANCH).values():
        assert TOKEN not in text
    assert TOKEN not in (repo_dir / ".git" / "config").read_text()
    assert TOKEN not in git(repo_dir, "config", "--list")
    scanned = 0
    for path in (repo_dir / ".dataeng-crew").rglob("*"):  # report.json, audit, lineage, dbt logs, sandbox, PR.md
        if path.is_file() and path.suffix not in {".duckdb", ".wal", ".msgpack"}:
            assert TOKEN.encode() not in path.read_bytes(), path
            scanned += 1
    assert scanned > 10
    reports = list((repo_dir / ".dataeng-crew" / "proposals").glob("*/report.json"))
    assert len(reports) == 2 and all(json.loads(r.read_text())["pull_request"]["repo"] == REPO for r in reports)


def test_rollback_closes_pr_and_deletes_both_branches(github_run, tmp_path):
    fake, repo_dir = github_run["fake"], github_run["repo"]
    from dataeng_crew import flow
    from dataeng_crew.rollback import rollback

    os.environ["GITHUB_TOKEN"] = TOKEN
    try:
        result = rollback(flow.resolve_workspace(github_run["project"]), None,
                          github_pr.GithubOptions(throttle=False, retries=1, max_wait=0.5))
    finally:
        os.environ.pop("GITHUB_TOKEN", None)
    assert result.action == "branch_deleted"
    assert "closed pull request #1" in result.message and "deleted branch" in result.message
    assert fake.repos[REPO].branches() == ["main"] and fake.repos[REPO].pulls[0]["state"] == "closed"
    assert git(repo_dir, "branch", "--list", BRANCH) == ""


def test_without_a_token_publish_github_says_what_is_missing(git_project, monkeypatch):
    for name in github_pr.TOKEN_ENV:
        monkeypatch.delenv(name, raising=False)
    from dataeng_crew import flow

    with pytest.raises(ConfigError, match=r"needs a token in GITHUB_TOKEN .*; and the repository: pass --repo"):
        flow.propose("daily_sales mart", project=git_project, publish="github")
    proc = subprocess.run(["dataeng-crew", "propose", "daily_sales mart", "--project", str(git_project),
                           "--publish", "github", "--repo", "acme/shop"], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k not in github_pr.TOKEN_ENV}, timeout=120)
    assert proc.returncode == 2 and "needs a token in GITHUB_TOKEN" in proc.stderr
    assert not (Path(git_project).parent / ".dataeng-crew" / "proposals").exists() or not any(
        (Path(git_project).parent / ".dataeng-crew" / "proposals").iterdir())  # refused before any work
