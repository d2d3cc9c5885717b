"""The review loop end to end against the fake GitHub server: real git, real dbt builds, real data diff.

One proposal is published as a PR; its mart is merged into ``main`` so the PR changes a mart the base branch
already builds. A person pushes a commit on the PR branch. Round 1: a write-access reviewer asks on a line to
rename a measure and, in a "changes requested" review, to exclude refunded orders; a read-only user's comment
and command are ignored. Round 2: "make it weekly". Round 3: no new feedback — nothing happens.
"""

from __future__ import annotations

import json
from pathlib import Path
import os

import duckdb
import pytest

from dataeng_crew.tools import github_pr
from tests.conftest import git, make_git_project
from tests.fakes.github_server import FakeGitHub
from tests.conftest import open_built

TOKEN = "ghp_REVIEWsecret0123456789abcdefFAKE"
REPO = "acme/shop"
BRANCH = "dataeng-crew/daily-sales-mart"
MART = "dbt_project/models/marts/fct_daily_sales.sql"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def review(tmp_path_factory, sample_warehouse):
    """Propose on GitHub, then three revise rounds; yields everything the tests look at."""
    project = make_git_project(tmp_path_factory.mktemp("review") / "repo", sample_warehouse)
    repo_dir = project.parent
    git(repo_dir, "remote", "add", "origin", "git@github.com:acme/shop.git")
    fake = FakeGitHub(token=TOKEN).start()
    tracked = git(repo_dir, "ls-files").splitlines()
    remote = fake.create_repo(REPO, {p: (repo_dir / p).read_text() for p in tracked})  # the remote mirrors main
    old = os.environ.get("GITHUB_TOKEN")
    os.environ["GITHUB_TOKEN"] = TOKEN
    try:
        from dataeng_crew import flow, revise

        options = github_pr.GithubOptions(api_url=fake.base_url, throttle=False, retries=2, max_wait=0.5)
        proposal = flow.propose("daily_sales mart", project=project, publish="github", github=options)
        first = remote.refs[f"refs/heads/{BRANCH}"]
        remote.refs["refs/heads/main"] = first  # the mart is on the base branch: the PR now changes it
        git(repo_dir, "merge", "--ff-only", "-q", BRANCH)
        person = remote.push(BRANCH, {"docs/review-notes.md": "checked the refund logic with finance\n"},
                             "docs: review notes")
        for user, permission in (("alice", "write"), ("mallory", "read")):
            fake.set_permission(REPO, user, permission)
        line = fake.add_review_comment(REPO, 1, "alice", "Please rename net_sales to net_revenue.", path=MART, line=120)
        changes = fake.add_review(REPO, 1, "alice", "CHANGES_REQUESTED",
                                  "Exclude orders where financial_status = refunded. Thanks!")
        fake.add_review(REPO, 1, "bob", "APPROVED", "")
        evil = fake.add_review_comment(REPO, 1, "mallory", "drop the gross_sales measure", path=MART, line=3)
        fake.add_issue_comment(REPO, 1, "mallory", "/dataeng-crew revise make it yearly")
        stages: list[str] = []
        round1 = revise.revise(project=project, pr_number=1, github=options, progress=stages.append)
        tip1 = remote.refs[f"refs/heads/{BRANCH}"]
        replies1 = [dict(c) for c in remote.review_comments if c["user"] == fake.login]
        body1 = remote.pulls[0]["body"]
        weekly = fake.add_review_comment(REPO, 1, "alice", "make it weekly", path=MART, line=1)
        round2 = revise.revise(project=project, pr_number=1, github=options)
        tip2 = remote.refs[f"refs/heads/{BRANCH}"]
        comments_before = len(remote.review_comments) + len(remote.issue_comments)
        round3 = revise.revise(project=project, pr_number=1, github=options)
        comments_after = len(remote.review_comments) + len(remote.issue_comments)
    finally:
        if old is None:
            os.environ.pop("GITHUB_TOKEN", None)
        else:
            os.environ["GITHUB_TOKEN"] = old
    yield {"fake": fake, "remote": remote, "proposal": proposal, "first": first, "person": person, "line": line,
           "changes": changes, "evil": evil, "round1": round1, "tip1": tip1, "replies1": replies1, "body1": body1,
           "weekly": weekly, "round2": round2, "tip2": tip2, "round3": round3, "stages": stages,
           "comments": (comments_before, comments_after)}
    fake.stop()


def test_review_comment_gives_one_follow_up_commit_on_top_of_the_persons_commit(review):
    remote, round1 = review["remote"], review["round1"]
    assert round1.status == "revised" and round1.commit == review["tip1"]
    commit = remote.get(review["tip1"], "commit")
    assert commit["parents"] == [review["person"]]  # ONE commit, on top of the person's: nothing rewritten
    assert "Dataeng-Crew-Proposal: " in commit["message"] and "revision 1" in commit["message"]
    files = remote.files_at(review["tip1"])
    assert files["docs/review-notes.md"] == "checked the refund logic with finance\n"  # the person's change stays
    mart = files[MART]
    assert "net_sales as net_revenue" in mart and "financial_status is distinct from 'refunded'" in mart
    yml = files["dbt_project/models/marts/fct_daily_sales.yml"]  # one yml per new model
    assert "name: net_revenue" in yml and "name: net_sales" not in yml
    assert not [p for p in files if p.endswith(".md") and "/proposals/" in p]  # the PR text is never committed
    state = json.loads(files["dbt_project/proposals/daily-sales-mart.revisions.json"])
    assert sorted(e["kind"] for e in state["edits"]) == ["exclude_rows", "rename_column"] and state["rounds"] == 1


def test_each_comment_gets_a_reply_saying_what_changed(review):
    replies = review["replies1"]
    assert len(replies) == 1 and replies[0]["in_reply_to_id"] == review["line"]["id"]  # in the line comment's thread
    assert f"Done in {review['tip1'][:10]}: renamed `net_sales` to `net_revenue`" in replies[0]["body"]
    issue = [c for c in review["remote"].issue_comments if c["user"] == review["fake"].login]
    review_reply = [c for c in issue if f"reply-to:review:{review['changes']['id']}" in c["body"]]
    assert len(review_reply) == 1 and "excluded rows where `financial_status` = 'refunded'" in review_reply[0]["body"]
    assert "@alice" in review_reply[0]["body"]


def test_feedback_from_users_without_write_access_is_ignored(review):
    round1, remote = review["round1"], review["remote"]
    assert all(f.author != "mallory" for f in round1.feedback)
    assert any("mallory: no write access" in s for s in review["stages"])
    mart = remote.files_at(review["tip1"])[MART]
    assert "gross_sales" in mart and "yearly" not in mart
    answered = [c for c in remote.review_comments + remote.issue_comments if c["user"] == review["fake"].login]
    assert not any(f"review_comment:{review['evil']['id']}" in c["body"] for c in answered)


def test_pr_body_refreshed_with_data_diff_against_the_base_build(review):
    body, round1 = review["body1"], review["round1"]
    assert "## Review rounds" in body and "## Data diff" in body and "`net_revenue`" in body
    mart = next(d for d in round1.diffs if d.model == "fct_daily_sales")
    assert mart.status == "changed" and mart.key == ["sales_date"]
    assert {(s.column, s.change) for s in mart.schema_changes} == {("net_sales", "removed"), ("net_revenue", "added")}
    assert mart.rows_changed and mart.changed_columns.get("order_count")
    assert f"| `fct_daily_sales` | changed | {mart.base_rows:,} → {mart.head_rows:,} |" in body


def test_diff_numbers_equal_hand_written_sql(review):
    round1 = review["round1"]
    mart = next(d for d in round1.diffs if d.model == "fct_daily_sales")
    con = duckdb.connect()
    con.execute(f"attach '{round1.base_warehouse}' as b (read_only)")
    con.execute(f"attach '{round1.head_warehouse}' as h (read_only)")
    shared = "sales_date, order_count, customer_count, gross_sales, discounts, refunds, average_order_value"
    base_rows, head_rows = (con.execute(f"select count(*) from {db}.main.fct_daily_sales").fetchone()[0] for db in "bh")
    # rows present on both sides whose shared columns differ: the head's rows minus identical base rows, keyed
    changed = con.execute(f"""
        select count(*) from (
            select {shared} from h.main.fct_daily_sales
            except
            select {shared} from b.main.fct_daily_sales
        ) as d
        where sales_date in (select sales_date from b.main.fct_daily_sales)""").fetchone()[0]
    orders_changed = con.execute("""
        select count(*) from b.main.fct_daily_sales as old
        inner join h.main.fct_daily_sales as new using (sales_date)
        where old.order_count <> new.order_count""").fetchone()[0]
    added = con.execute("""select count(*) from h.main.fct_daily_sales
                           where sales_date not in (select sales_date from b.main.fct_daily_sales)""").fetchone()[0]
    removed = con.execute("""select count(*) from b.main.fct_daily_sales
                             where sales_date not in (select sales_date from h.main.fct_daily_sales)""").fetchone()[0]
    assert (mart.base_rows, mart.head_rows) == (base_rows, head_rows)
    assert (mart.rows_changed, mart.rows_added, mart.rows_removed) == (changed, added, removed)
    assert mart.changed_columns["order_count"] == orders_changed > 0


def test_make_it_weekly_is_one_more_commit_that_keeps_earlier_changes(review):
    remote, round2 = review["remote"], review["round2"]
    assert round2.status == "revised" and remote.get(review["tip2"], "commit")["parents"] == [review["tip1"]]
    files = remote.files_at(review["tip2"])
    assert MART not in files and "dbt_project/suites/fct_daily_sales.json" not in files  # the daily mart is gone
    weekly = files["dbt_project/models/marts/fct_weekly_sales.sql"]
    assert "date_trunc('week'" in weekly and "net_sales as net_revenue" in weekly
    assert "financial_status is distinct from 'refunded'" in weekly
    assert "dbt_project/models/marts/fct_daily_sales.yml" not in files  # its per-model yml went with it
    # what the revision's sandbox build read stays: without the sources yml the branch would not build
    assert files["dbt_project/models/staging/shop/_shop__sources.yml"] == remote.files_at(review["tip1"])[
        "dbt_project/models/staging/shop/_shop__sources.yml"]
    assert "fct_daily_sales" not in "".join(c for p, c in files.items() if p.endswith(".yml"))
    assert files["docs/review-notes.md"]  # still the person's file
    diff = next(d for d in round2.diffs if d.model == "fct_weekly_sales")
    assert diff.status == "added" and diff.head_rows > 0
    daily = next(d for d in review["round1"].diffs if d.model == "fct_daily_sales")
    gone = next(d for d in round2.diffs if d.model == "fct_daily_sales")  # on the base branch, removed by the PR
    assert gone.status == "removed" and gone.base_rows == daily.base_rows and gone.head_rows == 0
    body = review["remote"].pulls[0]["body"]
    assert f"| `fct_weekly_sales` | added | – → {diff.head_rows:,} |" in body and "| `fct_daily_sales` | removed |" in body
    reply = [c for c in remote.review_comments if c.get("in_reply_to_id") == review["weekly"]["id"]]
    assert len(reply) == 1 and "changed the grain to weekly" in reply[0]["body"]


def test_the_local_branch_is_moved_only_when_it_is_the_pull_requests_head(review):
    """--pr: the local branch lacks the person's commit pushed to GitHub, so it is left as it is, and said so."""
    note = review["round1"].local_branch
    assert "was not moved" in note and "not the pull request's head" in note


def test_no_new_feedback_changes_nothing(review):
    round3 = review["round3"]
    assert round3.status == "no_new_feedback" and round3.commit is None
    assert review["remote"].refs[f"refs/heads/{BRANCH}"] == review["tip2"]
    assert review["comments"][0] == review["comments"][1]  # no second reply to anything


def test_the_first_pr_already_carries_the_data_diff(review):
    proposal = review["proposal"]
    mart = next(d for d in proposal.data_diffs if d.model == "fct_daily_sales")
    rows = open_built(proposal.warehouse).execute(
        "select count(*) from main.fct_daily_sales").fetchone()[0]
    assert mart.status == "added" and mart.base_rows is None and mart.head_rows == rows > 300
    body = Path(proposal.pr).read_text()  # the first PR's description (the PR's, not a file of the branch)
    assert "## Data diff" in body and f"| `fct_daily_sales` | added | – → {rows:,} |" in body
