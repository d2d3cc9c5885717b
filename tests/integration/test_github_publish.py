"""Publishing on GitHub against the local fake server: one branch, one commit, one PR; each failure
explained, token-free, and a re-run converges to exactly one branch and one open PR.

The files are a real proposal's (the session's ``published`` fixture, read back from its commit),
published by calling the tool function directly; the full flow/CLI runs are in test_github_flow.py.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from dataeng_crew.errors import ConfigError, PublishError
from tests.fakes.github_server import FakeGitHub
from dataeng_crew.tools import github_pr

TOKEN = "ghp_SECRETtoken0123456789abcdefFAKE"
REPO = "acme/shop"
FAST = github_pr.GithubOptions(throttle=False, retries=2, max_wait=0.5)


@pytest.fixture(scope="module")
def proposal_files(published) -> dict[str, str]:
    """The published proposal's files, read from its local commit."""
    proposal, repo, *_ = published
    return {path: subprocess.run(["git", "-C", str(repo), "show", f"{proposal.commit}:{path}"], check=True,
                                 capture_output=True, text=True).stdout for path in proposal.files}


@pytest.fixture()
def fake():
    with FakeGitHub(token=TOKEN) as server:
        server.create_repo(REPO, {"README.md": "# shop\n", ".github/CODEOWNERS": "* @lead\n/dbt_project/models/ @acme/data\n"})
        yield server


def publish(fake: FakeGitHub, files: dict[str, str], options: github_pr.GithubOptions = FAST, token: str = TOKEN,
            repo: str = REPO, **kw) -> github_pr.PublishResult:
    args = {"branch": "dataeng-crew/daily-sales-mart", "title": "dataeng-crew: daily_sales mart",
            "body": "the body", "message": "dataeng-crew: daily_sales mart", "approval_kinds": ["governance"], **kw}
    return github_pr.publish(github_pr.GithubTarget(repo, fake.base_url), options, files=files, token=token, **args)


def assert_converged(fake: FakeGitHub, files: dict[str, str]) -> None:
    """Exactly one dataeng-crew branch, holding every file, one commit on main, one open PR for it."""
    repo = fake.repos[REPO]
    assert [b for b in repo.branches() if b.startswith("dataeng-crew/")] == ["dataeng-crew/daily-sales-mart"]
    tip = repo.refs["refs/heads/dataeng-crew/daily-sales-mart"]
    assert repo.get(tip, "commit")["parents"] == [repo.refs["refs/heads/main"]]
    published = repo.files_at(tip)
    assert {p: published[p] for p in files} == files
    assert set(published) - set(files) == {"README.md", ".github/CODEOWNERS"}
    open_prs = [p for p in repo.pulls if p["state"] == "open"]
    assert len(open_prs) == 1 and open_prs[0]["head"] == "dataeng-crew/daily-sales-mart"


def assert_no_token(fake: FakeGitHub, *texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
    for pr in fake.repos[REPO].pulls:
        assert TOKEN not in pr["body"] and TOKEN not in pr["title"]


def test_one_branch_one_commit_one_pr_then_rerun_updates(fake, proposal_files):
    first = publish(fake, proposal_files)
    assert first.created_branch and first.created_pr and first.pr_number == 1
    assert_converged(fake, proposal_files)
    pr = fake.repos[REPO].pulls[0]
    assert pr["draft"] is True and pr["body"] == "the body"
    assert pr["labels"] == ["dataeng-crew", "needs-governance-approval"]
    assert pr["reviewers"] == ["lead"] and pr["teams"] == ["data"]  # CODEOWNERS: last matching rule per path
    # exactly one tree write and one commit write for all files (git data API)
    assert len(fake.calls("POST", r"/git/trees$")) == 1 and len(fake.calls("POST", r"/git/commits$")) == 1

    changed = {**proposal_files, "dbt_project/proposals/daily-sales-mart.md": "second run\n"}
    second = publish(fake, changed, body="the new body", approval_kinds=[])
    assert not second.created_branch and not second.created_pr and second.pr_number == 1
    assert second.commit != first.commit
    assert_converged(fake, changed)
    pr = fake.repos[REPO].pulls[0]
    assert pr["body"] == "the new body" and pr["labels"] == ["dataeng-crew"]  # approval label removed
    assert len(fake.calls("POST", r"/pulls$")) == 1
    assert fake.calls("PATCH", r"/git/refs/heads/dataeng-crew/")[0].body["force"] is True


def test_explicit_reviewers_ready_and_cost_label(fake, proposal_files):
    opts = github_pr.GithubOptions(throttle=False, retries=2, max_wait=0.5, draft=False,
                                   reviewers=("@ana", "acme/platform", "dataeng-bot"))
    result = publish(fake, proposal_files, opts, approval_kinds=["governance", "cost"])
    pr = fake.repos[REPO].pulls[0]
    assert pr["draft"] is False
    assert pr["labels"] == ["dataeng-crew", "needs-cost-approval", "needs-governance-approval"]
    assert pr["reviewers"] == ["ana"] and pr["teams"] == ["platform"]  # the PR author is never requested
    assert result.reviewers == ["ana"]


def expect_failure(fake, files, match: str, **kw) -> PublishError:
    with pytest.raises(PublishError, match=match) as info:
        publish(fake, files, **kw)
    assert_no_token(fake, str(info.value))
    return info.value


def test_bad_token_401_then_rerun(fake, proposal_files):
    err = expect_failure(fake, proposal_files, r"rejected the token while opening the repository \(401 Bad credentials\)", token="ghp_wrong_token_value")
    assert "Contents: read and write" in str(err)
    assert fake.repos[REPO].branches() == ["main"]
    publish(fake, proposal_files)
    assert_converged(fake, proposal_files)


@pytest.mark.parametrize("method,path,needs,step", [
    ("POST", r"/git/trees$", "contents=write", "creating the commit"),
    ("POST", r"/pulls$", "pull_requests=write", "creating the pull request"),
])
def test_403_missing_permission_names_it_and_leaves_no_orphan_branch(fake, proposal_files, method, path, needs, step):
    fake.fail(method, path, 403, message="Resource not accessible by personal access token",
              headers={"X-Accepted-GitHub-Permissions": needs})
    err = expect_failure(fake, proposal_files, "403")
    text = str(err)
    assert step in text and needs in text
    assert "Contents: read and write and Pull requests: read and write" in text
    assert fake.repos[REPO].branches() == ["main"]  # the branch made before the PR failed was deleted again
    publish(fake, proposal_files)
    assert_converged(fake, proposal_files)


def test_404_repository_not_found(fake, proposal_files):
    expect_failure(fake, proposal_files, r"404 .*acme/nope not found", repo="acme/nope")


def test_409_conflict_then_rerun(fake, proposal_files):
    fake.fail("POST", r"/git/commits$", 409, message="Git Repository is empty.")
    expect_failure(fake, proposal_files, r"conflict while creating the commit .*409 Git Repository is empty")
    publish(fake, proposal_files)
    assert_converged(fake, proposal_files)


@pytest.mark.parametrize("path", [r"/git/refs$", r"/pulls$"])
def test_lost_response_is_retried_and_the_existing_ref_or_pr_adopted(fake, proposal_files, path):
    fake.fail("POST", path, drop=True, after_effect=True)  # it happened on GitHub, the answer never arrived
    publish(fake, proposal_files)
    statuses = [r.status for r in fake.calls("POST", path)]
    assert statuses[:2] == [0, 422]  # the retry met "already exists" (422) and adopted it
    assert_converged(fake, proposal_files)


def test_existing_branch_from_an_earlier_run_is_moved_not_duplicated(fake, proposal_files):
    publish(fake, proposal_files)
    fake.repos[REPO].pulls[0]["state"] = "closed"  # someone closed the PR: a new one is opened for the branch
    publish(fake, proposal_files)
    assert_converged(fake, proposal_files)
    assert len(fake.repos[REPO].pulls) == 2


def test_rate_limit_429_retry_after_is_waited_for(fake, proposal_files):
    fake.fail("POST", r"/pulls$", 429, headers={"Retry-After": "0"}, message="You have exceeded a secondary rate limit")
    fake.fail("GET", r"/git/ref/heads/main$", 403, headers={"Retry-After": "0"},
              message="You have exceeded a secondary rate limit")
    publish(fake, proposal_files)
    assert [r.status for r in fake.calls("POST", r"/pulls$")] == [429, 201]
    assert [r.status for r in fake.calls("GET", r"/git/ref/heads/main$")][:2] == [403, 200]
    assert_converged(fake, proposal_files)


def test_rate_limit_reset_beyond_the_cap_fails_fast_then_rerun(fake, proposal_files):
    reset = str(int(time.time()) + 3600)
    fake.fail("POST", r"/git/trees$", 403, message="API rate limit exceeded for user ID 1.",
              headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    started = time.perf_counter()
    expect_failure(fake, proposal_files, r"rate limit while creating the commit .*resets in ~360\d s")
    assert time.perf_counter() - started < 5  # capped: no hour-long sleep
    publish(fake, proposal_files)
    assert_converged(fake, proposal_files)


def test_retry_after_beyond_retries_gives_up_clearly(fake, proposal_files):
    fake.fail("POST", r"/git/commits$", 429, times=10, headers={"Retry-After": "0"}, message="slow down")
    expect_failure(fake, proposal_files, r"(rate limit|kept refusing).*creating the commit")
    fake.clear_failures()
    publish(fake, proposal_files)
    assert_converged(fake, proposal_files)


def test_connection_drops(fake, proposal_files):
    fake.fail("GET", r"/pulls$", drop=True)  # one drop: retried transparently
    publish(fake, proposal_files)
    assert_converged(fake, proposal_files)
    fake.fail("POST", r"/git/commits$", drop=True, times=10)
    expect_failure(fake, proposal_files, r"lost the connection to http://127\.0\.0\.1:\d+/api/v3 while creating the commit")
    fake.clear_failures()
    publish(fake, proposal_files)
    assert_converged(fake, proposal_files)


def test_failure_after_the_pr_exists_converges(fake, proposal_files):
    fake.fail("POST", r"/issues/\d+/labels$", 500, times=10, message="boom")
    expect_failure(fake, proposal_files, r"GitHub (error 500|kept refusing).*labelling")
    fake.clear_failures()
    publish(fake, proposal_files)
    assert_converged(fake, proposal_files)
    assert fake.repos[REPO].pulls[0]["labels"] == ["dataeng-crew", "needs-governance-approval"]


def test_no_token_is_a_config_error(monkeypatch, tmp_path):
    for name in github_pr.TOKEN_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="GITHUB_TOKEN .*Contents: read and write"):
        github_pr.require_target(github_pr.GithubOptions(repo=REPO), None)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with pytest.raises(ConfigError, match="--repo owner/name or add a git remote"):
        github_pr.require_target(github_pr.GithubOptions(), tmp_path)


def test_rollback_closes_the_pr_and_deletes_the_branch(fake, proposal_files):
    result = publish(fake, proposal_files)
    done = github_pr.close_pull_request(github_pr.connect(github_pr.GithubTarget(REPO, fake.base_url), FAST, TOKEN),
                                        result.branch, result.commit)
    assert done == ["closed pull request #1", "deleted branch dataeng-crew/daily-sales-mart on GitHub"]
    assert fake.repos[REPO].branches() == ["main"] and fake.repos[REPO].pulls[0]["state"] == "closed"


def test_crewai_wrapper_calls_the_function(fake, proposal_files, monkeypatch):
    import functools
    import json

    from dataeng_crew.tools.crewai_tools import PublishPullRequestTool

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setattr(github_pr, "GithubOptions", functools.partial(github_pr.GithubOptions, throttle=False))
    out = json.loads(PublishPullRequestTool().run(repo=REPO, api_url=fake.base_url, branch="dataeng-crew/daily-sales-mart",
                                                  title="t", body="b", message="m", files=proposal_files,
                                                  approval_kinds=["governance"]))
    assert out["pr_number"] == 1 and out["files"] == sorted(proposal_files)
    assert_converged(fake, proposal_files)
    bad = json.loads(PublishPullRequestTool().run(repo="acme/nope", api_url=fake.base_url, branch="b", title="t",
                                                  body="b", message="m", files=proposal_files))
    assert "404" in bad["error"]


def test_ci_workflow_rides_along_only_when_the_repo_lacks_it(fake, proposal_files):
    from dataeng_crew.ci import WORKFLOW_PATH, render_workflow

    extra = {WORKFLOW_PATH: render_workflow("dbt_project")}
    result = publish(fake, proposal_files, extra_files=extra)
    assert WORKFLOW_PATH in result.files and fake.repos[REPO].files_at(result.commit)[WORKFLOW_PATH] == extra[WORKFLOW_PATH]
    other = fake.create_repo("acme/other", {WORKFLOW_PATH: "name: theirs\n"})
    result = publish(fake, proposal_files, repo="acme/other", extra_files=extra)
    assert WORKFLOW_PATH not in result.files and other.files_at(result.commit)[WORKFLOW_PATH] == "name: theirs\n"
