"""Pure parts of GitHub publishing: remotes, CODEOWNERS, labels, body size, options → target."""

from __future__ import annotations

import subprocess

import pytest

from dataeng_crew.errors import ConfigError
from dataeng_crew.tools import codeowners as co, github_pr as g


@pytest.mark.parametrize("url,expected", [
    ("https://github.com/acme/shop.git", ("github.com", "acme/shop")),
    ("https://github.com/acme/shop", ("github.com", "acme/shop")),
    ("https://x-access-token:ghp_abc@github.com/acme/shop.git", ("github.com", "acme/shop")),
    ("git@github.com:acme/shop.git", ("github.com", "acme/shop")),
    ("ssh://git@github.com/acme/shop.git", ("github.com", "acme/shop")),
    ("ssh://git@ghe.corp.example:2222/data/warehouse.git", ("ghe.corp.example", "data/warehouse")),
    ("https://GHE.corp.example/data/warehouse/", ("ghe.corp.example", "data/warehouse")),
    ("/srv/git/shop.git", None),
    ("", None),
])
def test_parse_remote(url, expected):
    assert g.parse_remote(url) == expected


def test_target_from_origin_or_repo(tmp_path, monkeypatch):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert g.resolve_target(g.GithubOptions(), tmp_path) is None
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", "git@ghe.corp.example:data/wh.git"], check=True)
    assert g.resolve_target(g.GithubOptions(), tmp_path) == g.GithubTarget("data/wh", "https://ghe.corp.example/api/v3")
    assert g.resolve_target(g.GithubOptions(repo="a/b"), tmp_path) == g.GithubTarget("a/b", "https://api.github.com")
    assert g.resolve_target(g.GithubOptions(api_url="http://127.0.0.1:1/api/v3/"), tmp_path).api_url == \
        "http://127.0.0.1:1/api/v3"
    with pytest.raises(ConfigError, match="owner/name"):
        g.resolve_target(g.GithubOptions(repo="not a repo"), tmp_path)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    assert not g.configured(g.GithubOptions(), tmp_path)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_x")
    assert g.configured(g.GithubOptions(), tmp_path)


CODEOWNERS = """
# comment
*                       @acme/everyone
*.md                    @docs-team-lead
/dbt_project/models/    @acme/analytics @ana   # inline comment
models/marts/**/fct_*   @finance
/dbt_project/suites/    someone@example.com
docs/                   @writer
"""


@pytest.mark.parametrize("path,owners", [
    ("README.md", ["@docs-team-lead"]),
    ("dbt_project/models/staging/shop/stg_shop__orders.sql", ["@acme/analytics", "@ana"]),
    # a pattern with a slash inside is relative to the root (gitignore rules): models/marts/** ≠ dbt_project/models/...
    ("dbt_project/models/marts/fct_daily_sales.sql", ["@acme/analytics", "@ana"]),
    ("models/marts/x/fct_y.sql", ["@finance"]),
    ("dbt_project/suites/fct_daily_sales.json", ["someone@example.com"]),
    ("a/docs/guide.txt", ["@writer"]),  # a name without a slash matches at any depth
    ("dbt_project/ddl/duckdb/fct_daily_sales.sql", ["@acme/everyone"]),
])
def test_codeowners_last_matching_rule_wins(path, owners):
    assert co.codeowners_for(co.parse_codeowners(CODEOWNERS), [path]) == owners


def test_split_owners_users_teams_and_emails():
    assert co.split_owners(["@ana", "@acme/analytics", "someone@example.com", "bob"]) == (["ana", "bob"], ["analytics"])


def test_labels_and_body_limit():
    assert g.labels_for([]) == ["dataeng-crew"]
    assert g.labels_for(["cost", "governance", "governance"]) == [
        "dataeng-crew", "needs-cost-approval", "needs-governance-approval"]
    body = "\n".join(f"line {i}" for i in range(20_000))
    cut = g.fit_body(body, "_(cut)_", limit=1000)
    assert len(cut) <= 1000 and cut.endswith("_(cut)_") and cut.startswith("line 0\n")
    assert g.fit_body("short", "_(cut)_") == "short"


def test_scrub_and_retry_cap():
    assert g.scrub("token ghp_abc in text", "ghp_abc") == "token *** in text"
    retry = g.make_retry(retries=3, max_wait=2.0)
    assert retry.total == 3 and retry.max_rate_limit_wait == 2.0
    assert getattr(retry, "retry_after_max", 2) == 2
