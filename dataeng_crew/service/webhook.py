"""GitHub webhook deliveries: the signature, the commands they carry, who may give them, and the replies.

``/dataeng-crew propose <request>`` in an issue comment → a proposal; ``/dataeng-crew revise`` on one of the
tool's pull requests, or a review requesting changes on one → a revision. Only users with write access
(``admin``, ``maintain``, ``write``; asked of the GitHub API) are obeyed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from dataeng_crew.errors import DataengCrewError
from dataeng_crew.service.config import ServeConfig
from dataeng_crew.service.store import Job

COMMAND = re.compile(r"^\s*/dataeng-crew[ \t]+(propose|revise)\b[ \t]*(.*)$", re.M)
WRITERS = frozenset({"admin", "maintain", "write"})
BRANCH_PREFIX = "dataeng-crew/"


def verify_signature(secret: str | None, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (``X-Hub-Signature-256``) is the HMAC-SHA256 of ``body`` under ``secret``.

    Constant-time; without a secret or a ``sha256=`` header, nothing verifies.
    """
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


@dataclass(frozen=True)
class Command:
    """What a delivery asks for."""

    kind: str  # propose | revise
    user: str
    repo: str
    number: int  # the issue or pull request
    request: str = ""
    is_pull: bool = False
    head: str | None = None  # the pull request's branch, when the payload names it


def parse_event(event: str, payload: dict[str, Any]) -> Command | str:
    """The command in a delivery, or why there is none (a short reason, recorded as its result)."""
    repo = (payload.get("repository") or {}).get("full_name") or ""
    if event == "ping":
        return "pong"
    if event == "issue_comment":
        if payload.get("action") != "created":
            return "ignored: not a new comment"
        comment, issue = payload.get("comment") or {}, payload.get("issue") or {}
        match = COMMAND.search(comment.get("body") or "")
        if not match:
            return "ignored: no /dataeng-crew command"
        kind, rest = match.group(1), match.group(2).strip()
        if kind == "propose" and not rest:
            return "ignored: /dataeng-crew propose without a request"
        return Command(kind, (comment.get("user") or {}).get("login", ""), repo, int(issue.get("number", 0)),
                       rest if kind == "propose" else "", is_pull="pull_request" in issue)
    if event == "pull_request_review":
        review, pull = payload.get("review") or {}, payload.get("pull_request") or {}
        if payload.get("action") != "submitted" or str(review.get("state", "")).lower() != "changes_requested":
            return "ignored: not a review requesting changes"
        return Command("revise", (review.get("user") or {}).get("login", ""), repo, int(pull.get("number", 0)),
                       is_pull=True, head=(pull.get("head") or {}).get("ref"))
    return f"ignored: event {event or '(none)'}"


class GithubApi:
    """The few GitHub calls the webhook needs, with the service's token (``GITHUB_TOKEN``)."""

    def __init__(self, config: ServeConfig, repo: str) -> None:
        """Open ``repo`` on the configured API lazily."""
        self.config, self.repo_name = config, repo
        self._repo: Any = None

    def _open(self) -> Any:
        if self._repo is None:
            from dataeng_crew.service.jobs import github_options
            from dataeng_crew.tools.github_pr import GithubTarget, connect

            api = self.config.github.api_url or "https://api.github.com"
            self._repo = connect(GithubTarget(self.repo_name, api), github_options(self.config))
        return self._repo

    def permission(self, user: str) -> str:
        """The user's permission on the repository (``none`` when unknown)."""
        try:
            return str(self._open().get_collaborator_permission(user))
        except DataengCrewError:
            raise
        except Exception:  # noqa: BLE001 - a 404 for a stranger: no permission
            return "none"

    def head(self, number: int) -> str:
        """The head branch of pull request ``number``."""
        return str(self._open().get_pull(number).head.ref)

    def comment(self, number: int, body: str) -> None:
        """Post ``body`` on issue or pull request ``number``."""
        self._open().get_issue(number).create_comment(body)


def reply_text(job: Job) -> str:
    """The comment answering a ``/dataeng-crew propose`` once its job ended."""
    result = job.result or {}
    pr = result.get("pull_request") or {}
    build = result.get("build") or {}
    nodes = build.get("nodes") or []
    passed = sum(1 for n in nodes if n.get("status") in ("pass", "success"))
    if job.status == "published" and pr:
        return (f"dataeng-crew: pull request #{pr.get('number')} {pr.get('url')} for “{job.request}” "
                f"(branch `{pr.get('branch')}`; dbt build {passed}/{len(nodes)} nodes passed). Job `{job.id}`.")
    if job.status == "published":
        return f"dataeng-crew: “{job.request}” is on branch `{result.get('branch')}`. Job `{job.id}`."
    if job.status == "awaiting_approval":
        return f"dataeng-crew: “{job.request}” is validated and waits for approval: {job.error}. Job `{job.id}`."
    return (f"dataeng-crew could not propose “{job.request}”: {job.error or job.status} "
            f"(exit code {job.exit_code}). Job `{job.id}`.")
