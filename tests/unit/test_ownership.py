"""Which commits are the tool's is decided by content, not by a message anyone can copy (issue 22 part 2):
a person who amends the tool's commit (`git commit --amend --no-edit`, the trailer stays) made a person's commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dataeng_crew.errors import PublishError
from dataeng_crew.tools import git_local

BRANCH = "dataeng-crew/daily-sales-mart"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.name", "Alice"], ["config", "user.email", "a@x"]):
        _git(root, *args)
    (root / "README.md").write_text("shop\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "init")
    base = _git(root, "rev-parse", "HEAD")
    git_local.commit_to_branch(root, base, BRANCH, {"models/marts/fct_daily_sales.sql": "select 1 as n\n"},
                               "dataeng-crew: daily_sales mart", proposal_id="p1")
    return root, base


def test_the_tools_commit_records_its_content_and_is_its_own(repo):
    root, base = repo
    tip = _git(root, "rev-parse", BRANCH)
    assert git_local.trailer_value(git_local.commit_message(root, tip), git_local.CONTENT_TRAILER)
    assert git_local.is_own_commit(root, tip)
    assert git_local.foreign_commits(root, BRANCH, base) == []


def test_an_amend_that_keeps_the_trailer_is_a_persons_commit(repo):
    root, base = repo
    _git(root, "checkout", "-q", BRANCH)
    (root / "models" / "marts" / "fct_daily_sales.sql").write_text("select 1 as n -- alice: reviewed\n")
    _git(root, "commit", "-q", "-a", "--amend", "--no-edit")
    amended = _git(root, "rev-parse", "HEAD")
    _git(root, "checkout", "-q", "main")
    assert git_local.is_own_message(git_local.commit_message(root, amended))  # the message still says "the tool"
    assert not git_local.is_own_commit(root, amended)
    assert git_local.foreign_commits(root, BRANCH, base) == [amended]
    with pytest.raises(PublishError):  # propose will not force-move the branch over the person's work
        git_local.check_branch_movable(root, BRANCH, base)
    assert git_local.proposal_base(root, amended) is None  # revise finds no commit of the tool's to rewrite


def test_an_amend_of_the_message_only_keeps_it_the_tools(repo):
    root, base = repo
    _git(root, "checkout", "-q", BRANCH)
    _git(root, "commit", "-q", "--amend", "--no-edit", "--date=2030-01-01T00:00:00")
    _git(root, "checkout", "-q", "main")
    assert git_local.foreign_commits(root, BRANCH, base) == []
