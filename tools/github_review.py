"""Review feedback on a GitHub pull request, and the follow-up commit and replies (PyGithub).

Reads a PR's "changes requested" reviews, its review comments (top-level and on lines), ``/dataeng-crew revise``
issue comments and the failed check runs of its head commit; keeps only feedback from users with write access
(``admin``, ``maintain``, ``write``) who are not the tool itself; answers each one with a reply that carries a
hidden marker, so a piece of feedback is answered once. The follow-up commit is made with the git data API on
top of the remote branch tip (never a force push: the ref update is a fast-forward, so a person's commits
stay).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dataeng_crew.contracts import Feedback
from dataeng_crew.tools.prompt_safety import clean_text

if TYPE_CHECKING:
    from github.Repository import Repository

WRITE_PERMISSIONS = {"admin", "maintain", "write"}
COMMAND = "/dataeng-crew revise"
MARKER = "<!-- dataeng-crew:reply-to:{id} -->"
MARKER_ID = re.compile(r"<!-- dataeng-crew:reply-to:(\S+) -->")
MAX_FEEDBACK_CHARS = 4000
FAILED = {"failure", "timed_out", "action_required", "cancelled"}
# a failing dbt node in the `validate --markdown` summary table: | dbt model | `name` | **error** | message |
FAILED_NODE = re.compile(r"^\|\s*dbt (model|test|seed|snapshot)\s*\|\s*`([^`]+)`\s*\|\s*\*\*(\w[\w ]*)\*\*\s*\|(.*)\|\s*$",
                         re.MULTILINE)


@dataclass
class PullRequestFeedback:
    """Everything read from one PR."""

    number: int
    head_branch: str
    head_sha: str
    base_branch: str
    base_sha: str
    feedback: list[Feedback]
    ignored: list[str]
    answered: set[str]


def _clean(text: str | None) -> str:
    return _body(text)


def _body(text: str | None) -> str:
    """Cleaned text that keeps its line breaks (one instruction per line)."""
    return "\n".join(clean_text(line, 400) for line in (text or "").replace("\r\n", "\n").split("\n"))[:MAX_FEEDBACK_CHARS]


def can_write(repo: "Repository", login: str, cache: dict[str, bool]) -> bool:
    """True when ``login`` has write access to ``repo`` (admin, maintain or write)."""
    from github.GithubException import GithubException

    if login not in cache:
        try:
            cache[login] = repo.get_collaborator_permission(login) in WRITE_PERMISSIONS
        except GithubException:
            cache[login] = False
    return cache[login]


def failed_checks(repo: "Repository", sha: str) -> list[Feedback]:
    """One feedback per failing dbt node in the failed check runs of ``sha`` (one per run when none is named)."""
    from github.GithubException import GithubException

    out: list[Feedback] = []
    for run in repo.get_commit(sha).get_check_runs():
        if run.conclusion not in FAILED:
            continue
        text = "\n".join(x for x in (run.output.title, run.output.summary, run.output.text) if x) if run.output else ""
        try:  # GitHub Actions puts `::error::` lines (what `validate` prints in CI) in the run's annotations
            text += "\n" + "\n".join(a.message or "" for a in run.get_annotations())
        except GithubException:
            pass
        nodes = FAILED_NODE.findall(text or "")
        for kind, name, status, message in nodes:
            if kind != "model":
                continue
            out.append(Feedback(id=f"check:{run.id}:{name}", kind="check", author=f"check {run.name}",
                                node=name, body=_clean(f"{kind} {name}: {status} — {message.strip()}")))
        if not [n for n in nodes if n[0] == "model"]:
            out.append(Feedback(id=f"check:{run.id}", kind="check", author=f"check {run.name}",
                                body=_clean(text or f"{run.name} failed")))
    return out


def read_feedback(repo: "Repository", number: int, me: str | None = None) -> PullRequestFeedback:
    """Collect the PR's feedback; feedback from users without write access (and the tool's own) is ignored.

    Args:
        repo: PyGithub repository.
        number: The PR number.
        me: The tool's login (default: the PR's author, which the tool opened); its comments are not feedback.

    Returns:
        The feedback in order (reviews, review comments, commands, failed checks), the ids already answered
        (a reply with this module's marker exists) and why anything was ignored.
    """
    pr = repo.get_pull(number)
    me = me or pr.user.login
    cache: dict[str, bool] = {}
    feedback: list[Feedback] = []
    ignored: list[str] = []
    answered: set[str] = set()
    comments = list(pr.get_review_comments())
    issue_comments = list(pr.get_issue_comments())
    for c in [*comments, *issue_comments]:  # only the tool's own replies say what was answered: a marker planted
        if c.user.login.lower() == me.lower():  # by anyone else silences nobody
            answered.update(MARKER_ID.findall(c.body or ""))

    def admit(login: str, fid: str, text: str = "") -> bool:
        if login.lower() == me.lower():
            return False
        if not can_write(repo, login, cache):
            ignored.append(f"{fid} by {login}: no write access to {repo.full_name}")
            return False
        return True

    for review in pr.get_reviews():
        if review.state != "CHANGES_REQUESTED" or not (review.body or "").strip():
            continue
        fid = f"review:{review.id}"
        if admit(review.user.login, fid):
            feedback.append(Feedback(id=fid, kind="review", author=review.user.login, body=_body(review.body)))
    for comment in comments:
        if getattr(comment, "in_reply_to_id", None):
            continue  # a reply in a thread, not a new request
        fid = f"review_comment:{comment.id}"
        if admit(comment.user.login, fid, comment.body or ""):
            feedback.append(Feedback(id=fid, kind="review_comment", author=comment.user.login, body=_body(comment.body),
                                     path=comment.path, line=comment.line or comment.original_line))
    for comment in issue_comments:
        text = (comment.body or "").strip()
        if not text.lower().startswith(COMMAND):
            continue
        fid = f"issue_comment:{comment.id}"
        rest = text[len(COMMAND):].strip()
        if admit(comment.user.login, fid) and rest:
            feedback.append(Feedback(id=fid, kind="issue_comment", author=comment.user.login, body=_body(rest)))
    feedback += failed_checks(repo, pr.head.sha)
    return PullRequestFeedback(number=number, head_branch=pr.head.ref, head_sha=pr.head.sha, base_branch=pr.base.ref, base_sha=pr.base.sha,
                               feedback=feedback, ignored=ignored, answered=answered)


def inert(text: str) -> str:
    """Text the bot writes back (quoted feedback, its answer) made inert on GitHub: no raw HTML (hidden markers
    included), no mention that pings a person or a team, no image (tracking pixel) or rendered link."""
    text = html.escape(text, quote=False)
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)  # an image: its alt text
    text = re.sub(r"\[([^\]]*)\]\(([^)\s]*)[^)]*\)", r"\1 (`\2`)", text)  # a link: its text, the address as code
    text = re.sub(r"(?<![`\w])(https?://[^\s`]+)", r"`\1`", text)  # a bare address: as code, not a link
    return re.sub(r"(?<![`\w])@([A-Za-z0-9][A-Za-z0-9-]*(?:/[A-Za-z0-9][\w-]*)?)", r"`@\1`", text)  # a mention: as code


def reply(repo: "Repository", number: int, feedback: Feedback, text: str) -> None:
    """Answer one piece of feedback: in its thread for a review comment, else as a PR comment quoting it."""
    marker = MARKER.format(id=feedback.id)
    pr = repo.get_pull(number)
    if feedback.kind == "review_comment":
        pr.create_review_comment_reply(int(feedback.id.split(":")[1]), f"{inert(text)}\n\n{marker}")
        return
    who = f"@{feedback.author}" if feedback.kind != "check" else inert(feedback.author)
    quoted = "\n".join(f"> {inert(line)}" for line in feedback.body.splitlines()[:6])
    pr.create_issue_comment(f"{who}:\n{quoted}\n\n{inert(text)}\n\n{marker}")


def branch_files(repo: "Repository", sha: str, prefix: str) -> dict[str, bytes]:
    """``{repo path: content}`` of every file under ``prefix`` in commit ``sha``."""
    import base64

    commit = repo.get_git_commit(sha)
    out = {}
    for item in repo.get_git_tree(commit.tree.sha, recursive=True).tree:
        if item.type == "blob" and (not prefix or item.path.startswith(prefix)):
            out[item.path] = base64.b64decode(repo.get_git_blob(item.sha).content)
    return out


def read_file(repo: "Repository", sha: str, path: str) -> bytes | None:
    """One file's content at commit ``sha``, or None when it is not there."""
    from github.GithubException import UnknownObjectException

    try:
        content = repo.get_contents(path, ref=sha)
    except UnknownObjectException:
        return None
    return content.decoded_content if not isinstance(content, list) else None


def branch_commits(repo: "Repository", tip: str, stop: str = "", is_own: Any = lambda _m: False,
                   limit: int = 200) -> list[dict[str, Any]]:
    """The first-parent chain from ``tip`` (newest first): sha, message, parents, tree.

    The walk ends at the root, after ``limit`` commits, or at the first commit not made by the tool (``is_own`` of its
    message is false) once ``stop`` (the PR base's tip) was reached: the proposal's own commits below the base are
    still walked, so the oldest one — and the commit the proposal started from — are found.
    """
    chain = []
    sha, passed = tip, False
    for _ in range(limit):
        commit = repo.get_git_commit(sha)
        passed = passed or sha == stop
        if passed and chain and not is_own(commit.message):
            break
        parents = [p.sha for p in commit.parents]
        chain.append({"sha": sha, "message": commit.message, "parents": parents, "tree": commit.tree.sha})
        if not parents:
            break
        sha = parents[0]
    return chain


def tree_changes(repo: "Repository", commit: dict[str, Any]) -> dict[str, str | None]:
    """``{path: new blob id or None}`` for what a commit changed against its first parent (as git_local's)."""
    before: dict[str, str] = {}
    if commit["parents"]:
        parent = repo.get_git_commit(commit["parents"][0])
        before = {i.path: i.sha for i in repo.get_git_tree(parent.tree.sha, recursive=True).tree if i.type == "blob"}
    after = {i.path: i.sha for i in repo.get_git_tree(commit["tree"], recursive=True).tree if i.type == "blob"}
    return {p: after.get(p) for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def changed_paths(repo: "Repository", commit: dict[str, Any]) -> list[str]:
    """Paths a commit changed against its first parent."""
    return sorted(tree_changes(repo, commit)) if commit["parents"] else []


def is_own_remote(repo: "Repository", commit: dict[str, Any]) -> bool:
    """:func:`git_local.is_own_commit` on GitHub: the trailer, and the content the tool recorded."""
    from dataeng_crew.tools.git_local import owns

    return owns(str(commit["message"] or ""), lambda: tree_changes(repo, commit))


def commit_on_top(repo: "Repository", branch: str, tip: str, files: dict[str, str], deletions: list[str],
                  message: str) -> str:
    """ONE commit on top of the remote ``tip`` (its tree + files − deletions); the ref moves by fast-forward only."""
    from github import InputGitTreeElement

    parent = repo.get_git_commit(tip)
    elements = [InputGitTreeElement(p, "100644", "blob", content=c) for p, c in sorted(files.items())]
    elements += [InputGitTreeElement(p, "100644", "blob", sha=None) for p in sorted(deletions)]
    tree = repo.create_git_tree(elements, base_tree=parent.tree)
    from dataeng_crew.tools.git_local import with_content

    message = with_content(message, tree_changes(repo, {"parents": [tip], "tree": tree.sha}))  # as locally
    commit = repo.create_git_commit(message, tree, [parent])
    repo.get_git_ref(f"heads/{branch}").edit(commit.sha, force=False)  # 422 when the branch moved meanwhile
    return commit.sha
