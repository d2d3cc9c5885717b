"""Publish a proposal as ONE commit on a GitHub branch and a pull request (PyGithub).

The commit is made with the git data API: one tree on top of the base branch's tree holding every
file (contents inline, so GitHub writes the blobs: one write instead of one per file), one commit
whose parent is the base tip, then the ref ``refs/heads/dataeng-crew/<slug>`` is created, or moved
(forced) to the fresh commit when it exists. Then the open PR for that branch is edited, or a draft
PR is created. Re-running therefore converges to one branch with one commit and one open PR.

Failures become :class:`~dataeng_crew.errors.PublishError` with the permission or step that is
missing. The token is only ever held by PyGithub's ``Auth.Token``: it never enters a message, the
proposal, the PR body or git config; messages are scrubbed of it anyway.
"""

from __future__ import annotations

import os
import re
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from dataeng_crew.errors import ConfigError, PublishError
from dataeng_crew.tools.codeowners import codeowners_for, parse_codeowners, split_owners

if TYPE_CHECKING:  # PyGithub is imported lazily (not needed by --help or local publishing)
    from github.Repository import Repository

TOKEN_ENV = ("GITHUB_TOKEN", "GH_TOKEN")
DEFAULT_API_URL = "https://api.github.com"
PERMISSIONS = ("a fine-grained token needs repository permissions Contents: read and write and Pull requests: "
               "read and write (a classic token: the repo scope)")
BASE_LABEL = "dataeng-crew"
APPROVAL_LABELS = {"governance": "needs-governance-approval", "cost": "needs-cost-approval"}
LABEL_COLORS = {BASE_LABEL: "5319e7", "needs-governance-approval": "b60205", "needs-cost-approval": "fbca04"}
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")  # GitHub's search order
MAX_BODY = 65_000  # GitHub refuses bodies over 65,536 characters


@dataclass(frozen=True)
class GithubOptions:
    """How to publish on GitHub (from the CLI). The token is never part of it: see :func:`token_from_env`.

    Attributes:
        repo: ``owner/name``; default: inferred from the git remote ``origin``.
        api_url: REST API root; default: ``https://api.github.com``, or ``https://HOST/api/v3`` for a
            GitHub Enterprise remote.
        draft: Open new PRs as drafts (``--ready`` sets False).
        reviewers: ``user`` or ``org/team`` to request; default: from CODEOWNERS.
        base: Base branch; default: the repository's default branch.
        include_ci: Add the dataeng-crew PR workflow to the commit when the repository lacks it.
        retries: Retries per request (rate limits, 5xx, dropped connections).
        max_wait: Cap in seconds on any one rate-limit wait; a longer reset fails fast instead.
        throttle: Keep PyGithub's pauses between requests (off in tests).
    """

    repo: str | None = None
    api_url: str | None = None
    draft: bool = True
    reviewers: tuple[str, ...] = ()
    base: str | None = None
    include_ci: bool = False
    retries: int = 4
    max_wait: float = 60.0
    throttle: bool = True


@dataclass(frozen=True)
class GithubTarget:
    """Where to publish: ``owner/name`` on the API at ``api_url``."""

    repo: str
    api_url: str


@dataclass
class PullRequestSpec:
    """What to publish: the files of one commit and the PR around it."""

    branch: str
    title: str
    body: str
    message: str
    files: dict[str, str]
    labels: list[str] = field(default_factory=lambda: [BASE_LABEL])
    reviewers: list[str] = field(default_factory=list)
    draft: bool = True
    base: str | None = None


@dataclass
class PublishResult:
    """What :func:`publish_pull_request` did."""

    repo: str
    branch: str
    base: str
    commit: str
    pr_number: int
    pr_url: str
    created_branch: bool
    created_pr: bool
    labels: list[str]
    reviewers: list[str]
    team_reviewers: list[str]
    files: list[str]
    warnings: list[str] = field(default_factory=list)


# -- configuration ------------------------------------------------------------------------------
def token_from_env() -> str | None:
    """The token in ``GITHUB_TOKEN`` (or ``GH_TOKEN``), or None."""
    for name in TOKEN_ENV:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def parse_remote(url: str) -> tuple[str, str] | None:
    """``(host, "owner/name")`` from a git remote URL (https, ssh or scp-like), or None.

    Credentials in the URL (``https://user:token@host/...``) are dropped.

    Examples:
        >>> parse_remote("git@github.com:acme/shop.git")
        ('github.com', 'acme/shop')
        >>> parse_remote("https://x:secret@github.com/acme/shop")
        ('github.com', 'acme/shop')
    """
    url = url.strip()
    m = (re.match(r"^(?:https?|ssh|git)://(?:[^@/]+@)?([^/:]+)(?::\d+)?/(.+?)/?$", url)
         or re.match(r"^(?:[^@/]+@)?([^/:]+):(?!/)(.+?)/?$", url))
    if not m:
        return None
    parts = m[2].removesuffix(".git").split("/")
    if len(parts) < 2 or not all(parts[-2:]):
        return None
    return m[1].lower(), f"{parts[-2]}/{parts[-1]}"


def api_url_for_host(host: str) -> str:
    """The REST root for a git host: api.github.com, or GitHub Enterprise's ``/api/v3``."""
    return DEFAULT_API_URL if host in {"github.com", "www.github.com"} else f"https://{host}/api/v3"


def _origin_url(git_repo: Path | None) -> str | None:
    if git_repo is None:
        return None
    proc = subprocess.run(["git", "-C", str(git_repo), "remote", "get-url", "origin"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def resolve_target(options: GithubOptions, git_repo: Path | None) -> GithubTarget | None:
    """The repository and API to publish to, or None when neither ``--repo`` nor ``origin`` names one.

    Raises:
        ConfigError: When ``--repo`` is not ``owner/name``.
    """
    remote = parse_remote(_origin_url(git_repo) or "")
    if options.repo:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", options.repo):
            raise ConfigError(f"--repo must be owner/name, not {options.repo!r}")
        repo = options.repo
    elif remote:
        repo = remote[1]
    else:
        return None
    api = options.api_url or (api_url_for_host(remote[0]) if remote and not options.repo else DEFAULT_API_URL)
    return GithubTarget(repo=repo, api_url=api.rstrip("/"))


def configured(options: GithubOptions, git_repo: Path | None) -> bool:
    """True when a token and a repository are configured (``--publish`` then defaults to github)."""
    try:
        return token_from_env() is not None and resolve_target(options, git_repo) is not None
    except ConfigError:
        return True  # let the github path report the bad --repo


def require_target(options: GithubOptions, git_repo: Path | None) -> GithubTarget:
    """Like :func:`resolve_target`, but every missing piece is a clear ConfigError (checked before any work).

    Raises:
        ConfigError: No token, or no repository.
    """
    missing = []
    if token_from_env() is None:
        missing.append(f"a token in GITHUB_TOKEN ({PERMISSIONS})")
    target = resolve_target(options, git_repo)
    if target is None:
        missing.append("the repository: pass --repo owner/name or add a git remote `origin` on GitHub")
    if missing:
        raise ConfigError("--publish github needs " + "; and ".join(missing))
    assert target is not None
    return target


def make_retry(retries: int = 4, max_wait: float = 60.0) -> Any:
    """PyGithub's ``GithubRetry`` with a cap on every wait.

    Rate limits (403/429 with ``Retry-After`` or ``X-RateLimit-Reset``), 5xx answers and dropped
    connections are retried ``retries`` times; a ``Retry-After`` is capped at ``max_wait`` seconds
    and a rate-limit reset further away than ``max_wait`` fails at once, so the total wait is at
    most ``retries * max_wait``.
    """
    import inspect

    from github.GithubRetry import GithubRetry

    kwargs: dict[str, Any] = {"total": retries, "backoff_factor": min(0.5, max_wait), "backoff_max": max_wait,
                              "max_rate_limit_wait": max_wait, "secondary_rate_wait": min(60.0, max_wait)}
    if "retry_after_max" in inspect.signature(GithubRetry.__mro__[1].__init__).parameters:  # urllib3 >= 2.5
        kwargs["retry_after_max"] = max(0, int(max_wait))
    return GithubRetry(**kwargs)


def connect(target: GithubTarget, options: GithubOptions, token: str | None = None) -> "Repository":
    """Open the repository with PyGithub.

    Raises:
        ConfigError: No token.
        PublishError: 401/403/404 or a connection problem, explained.
    """
    from github import Auth, Github

    token = token or token_from_env()
    if not token:
        raise ConfigError(f"--publish github needs a token in GITHUB_TOKEN ({PERMISSIONS})")
    pauses = {} if options.throttle else {"seconds_between_requests": 0, "seconds_between_writes": 0}
    gh = Github(auth=Auth.Token(token), base_url=target.api_url, retry=make_retry(options.retries, options.max_wait),
                timeout=30, **pauses)
    with github_errors(target, options, token) as step:
        step("opening the repository")
        return gh.get_repo(target.repo)
    raise AssertionError("unreachable")  # pragma: no cover


# -- errors -------------------------------------------------------------------------------------
def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _message(exc: Any) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        text = str(data.get("message") or "")
        details = [str(e.get("message") or e.get("code") or "") for e in data.get("errors") or [] if isinstance(e, dict)]
        return "; ".join(x for x in [text, *details] if x)
    return str(data or exc)


def explain(exc: BaseException, target: GithubTarget, action: str, options: GithubOptions) -> PublishError:
    """A PublishError saying what failed, why, and what to do.

    Args:
        exc: What PyGithub or requests raised.
        target: The repository.
        action: The step that failed, e.g. ``"creating the pull request"``.
        options: For the retry cap in rate-limit messages.
    """
    import requests
    from github.GithubException import GithubException, RateLimitExceededException

    where = f"{target.repo} at {target.api_url}"
    rerun = "re-run the same command: it updates the same branch and pull request"
    if isinstance(exc, RateLimitExceededException) or (isinstance(exc, GithubException) and exc.status == 429):
        wait = getattr(exc, "wait", None)
        reset = _header(getattr(exc, "headers", None), "x-ratelimit-reset")
        after = _header(getattr(exc, "headers", None), "retry-after")
        when = (f"the limit resets in ~{wait:.0f} s" if wait else f"retry after {after} s" if after
                else f"the limit resets at epoch {reset}" if reset else "wait a while")
        return PublishError(f"GitHub rate limit while {action} on {where}: {when}, more than this run waits "
                            f"({options.retries} retries, at most {options.max_wait:.0f} s each); {rerun} later")
    if isinstance(exc, GithubException):
        status, msg = exc.status, _message(exc)
        if status == 401:
            return PublishError(f"GitHub rejected the token while {action} (401 {msg}): GITHUB_TOKEN is invalid or "
                                f"expired; create a new one ({PERMISSIONS})")
        if status == 403:
            wanted = _header(exc.headers, "x-accepted-github-permissions")
            asked = f"; GitHub says this call needs: {wanted}" if wanted else ""
            return PublishError(f"GitHub refused {action} on {where} (403 {msg}): the token lacks a permission — "
                                f"{PERMISSIONS}{asked}")
        if status == 404:
            return PublishError(f"GitHub answered 404 while {action}: repository {target.repo} not found at "
                                f"{target.api_url}, or the token cannot see it; check --repo/--github-url and that "
                                f"the token has access to that repository ({PERMISSIONS})")
        if status == 409:
            return PublishError(f"GitHub reported a conflict while {action} on {where} (409 {msg}): the repository "
                                f"may be empty (push a first commit) or the branch moved meanwhile; {rerun}")
        if status == 422:
            return PublishError(f"GitHub refused {action} on {where} (422 {msg}); {rerun}")
        return PublishError(f"GitHub error {status} while {action} on {where}: {msg}; {rerun}")
    if isinstance(exc, requests.exceptions.RetryError):
        return PublishError(f"GitHub kept refusing {action} on {where} after {options.retries} retries "
                            f"(rate limit or server errors); {rerun} later")
    if isinstance(exc, (requests.exceptions.RequestException, ConnectionError, TimeoutError)):
        return PublishError(f"lost the connection to {target.api_url} while {action} ({type(exc).__name__}) after "
                            f"{options.retries} retries; {rerun}")
    return PublishError(f"GitHub publishing failed while {action} on {where}: {type(exc).__name__}: {exc}")


def scrub(text: str, token: str | None) -> str:
    """``text`` with the token (if any) replaced by ``***``."""
    return text.replace(token, "***") if token else text


@contextmanager
def github_errors(target: GithubTarget, options: GithubOptions, token: str | None = None) -> Iterator[Any]:
    """Turn PyGithub/requests errors inside the block into explained, token-free PublishErrors.

    Yields a ``step(name)`` callable: call it before each step so the message says which one failed.
    """
    import requests
    from github.GithubException import GithubException

    current = ["talking to GitHub"]

    def step(name: str) -> None:
        current[0] = name

    try:
        yield step
    except (GithubException, requests.exceptions.RequestException, ConnectionError, TimeoutError) as exc:
        err = explain(exc, target, current[0], options)
        raise PublishError(scrub(str(err), token or token_from_env())) from None


# -- CODEOWNERS ---------------------------------------------------------------------------------
def read_codeowners(repo: "Repository", ref: str) -> str | None:
    """The CODEOWNERS text on ``ref`` (first of .github/, root, docs/), or None."""
    from github.GithubException import UnknownObjectException

    for path in CODEOWNERS_PATHS:
        try:
            content = repo.get_contents(path, ref=ref)
        except UnknownObjectException:
            continue
        if not isinstance(content, list):
            return content.decoded_content.decode("utf-8", "replace")
    return None


# -- publishing ---------------------------------------------------------------------------------
def labels_for(approval_kinds: list[str]) -> list[str]:
    """``dataeng-crew`` plus ``needs-<kind>-approval`` for each approval the proposal needs."""
    return [BASE_LABEL, *sorted({APPROVAL_LABELS[k] for k in approval_kinds if k in APPROVAL_LABELS})]


def fit_body(body: str, note: str, limit: int = MAX_BODY) -> str:
    """The body, cut at a line boundary with ``note`` when it exceeds GitHub's limit."""
    if len(body) <= limit:
        return body
    cut = body[: limit - len(note) - 2].rsplit("\n", 1)[0]
    return f"{cut}\n\n{note}"


def _find_open_pr(repo: "Repository", branch: str, base: str) -> Any:
    owner = repo.full_name.split("/")[0]
    return next(iter(repo.get_pulls(state="open", head=f"{owner}:{branch}", base=base)), None)


def remote_foreign_commits(repo: "Repository", tip: str, base_sha: str, limit: int = 50) -> list[str]:
    """Commits on a GitHub branch the tool did not make: walking back from ``tip``, every commit before the
    base or a commit with the ``Dataeng-Crew-Proposal`` trailer (the tool's own, built on a base)."""
    from dataeng_crew.tools.github_review import is_own_remote

    foreign, todo, seen = [], [tip], set()
    while todo and len(seen) < limit:
        sha = todo.pop()
        if sha in seen or sha == base_sha:
            continue
        seen.add(sha)
        commit = repo.get_git_commit(sha)
        if is_own_remote(repo, {"message": commit.message or "", "parents": [p.sha for p in commit.parents],
                                "tree": commit.tree.sha}):  # the trailer and the content the tool recorded
            continue
        foreign.append(sha)
        todo.extend(p.sha for p in commit.parents)
    return foreign


def refuse_foreign(repo: "Repository", branch: str, tip: str, base_sha: str) -> None:
    """Never force-move a GitHub branch over commits a person added.

    Raises:
        PublishError: Naming the commits and how to go on.
    """
    foreign = remote_foreign_commits(repo, tip, base_sha)
    if foreign:
        raise PublishError(f"GitHub branch {branch} of {repo.full_name} holds {len(foreign)} commit(s) dataeng-crew did "
                           f"not make ({', '.join(s[:10] for s in foreign[:5])}); refusing to move it over them. To go "
                           "on: `dataeng-crew revise` to add a follow-up commit on top, delete that branch on GitHub "
                           "if the work is not wanted, or word the request differently to get a new branch")


def publish_pull_request(repo: "Repository", spec: PullRequestSpec, step: Any = lambda _s: None) -> PublishResult:
    """One commit with all ``spec.files`` on ``spec.branch`` (created or force-moved), and its open PR.

    Idempotent: an existing branch is moved to a fresh single commit on the current base, an
    existing open PR is edited (title, body, labels) instead of a second one being opened; a 422
    "already exists" on the ref or the PR (e.g. a retried request that had succeeded) is adopted.
    If opening the PR fails on a branch this call created, the branch is deleted again (best effort),
    so no orphan branch stays behind; after the PR exists, a failure (labels, reviewers) leaves branch
    and PR in place and a re-run converges to exactly one of each.

    Args:
        repo: PyGithub repository.
        spec: What to publish.
        step: Called with the name of each step (for error messages).

    Returns:
        What was done.
    """
    from github import InputGitTreeElement
    from github.GithubException import GithubException, UnknownObjectException

    step("reading the base branch")
    base = spec.base or repo.default_branch
    base_sha = repo.get_git_ref(f"heads/{base}").object.sha
    base_commit = repo.get_git_commit(base_sha)
    step("creating the commit (git tree + commit)")
    elements = [InputGitTreeElement(path, "100644", "blob", content=content) for path, content in sorted(spec.files.items())]
    tree = repo.create_git_tree(elements, base_tree=base_commit.tree)
    from dataeng_crew.tools.git_local import trailer_of, with_trailer

    message = spec.message if trailer_of(spec.message) else with_trailer(spec.message, spec.branch.rsplit("/", 1)[-1])
    commit = repo.create_git_commit(message, tree, [base_commit])  # the trailer marks the tool's own commits

    step(f"updating branch {spec.branch}")
    created_branch = False
    try:
        ref = repo.get_git_ref(f"heads/{spec.branch}")
        ref.object  # noqa: B018 - loads the ref: 404 when the branch does not exist yet
        refuse_foreign(repo, spec.branch, ref.object.sha, base_sha)
        ref.edit(commit.sha, force=True)
    except UnknownObjectException:
        step(f"creating branch {spec.branch}")
        try:
            repo.create_git_ref(f"refs/heads/{spec.branch}", commit.sha)
            created_branch = True
        except GithubException as exc:
            if exc.status != 422:
                raise
            ref = repo.get_git_ref(f"heads/{spec.branch}")  # created meanwhile: adopt it, unless a person's
            refuse_foreign(repo, spec.branch, ref.object.sha, base_sha)
            ref.edit(commit.sha, force=True)

    try:
        step("finding an open pull request")
        pr = _find_open_pr(repo, spec.branch, base)
        created_pr = pr is None
        if pr is None:
            step("creating the pull request")
            try:
                pr = repo.create_pull(base=base, head=spec.branch, title=spec.title, body=spec.body, draft=spec.draft)
            except GithubException as exc:
                pr = _find_open_pr(repo, spec.branch, base) if exc.status == 422 else None
                if pr is None:
                    raise
                created_pr = False  # a retried request had created it: adopt it
    except Exception:
        if created_branch:  # no orphan branch: a branch without its PR is undone (a PR, once open, stays)
            try:
                repo.get_git_ref(f"heads/{spec.branch}").delete()
            except Exception:  # noqa: BLE001 - best effort; a re-run adopts the branch anyway
                pass
        raise
    if not created_pr:
        step("updating the pull request")
        pr.edit(title=spec.title, body=spec.body)
    step("labelling the pull request")
    _ensure_labels(repo, spec.labels)
    current = {label.name for label in pr.get_labels()}
    for name in sorted((current & set(LABEL_COLORS)) - set(spec.labels)):  # approvals no longer needed
        pr.remove_from_labels(name)
    if set(spec.labels) - current:
        pr.add_to_labels(*[x for x in spec.labels if x not in current])

    warnings: list[str] = []
    step("requesting reviewers")
    author = getattr(getattr(pr, "user", None), "login", None)
    users, teams = split_owners(spec.reviewers)
    users = [u for u in users if u.lower() != (author or "").lower()]
    if users or teams:
        try:
            pr.create_review_request(reviewers=users, team_reviewers=teams)
        except GithubException as exc:
            if exc.status != 422:
                raise
            warnings.append(f"reviewers not requested ({_message(exc)}): "
                            f"{', '.join(users + [f'team {t}' for t in teams])}")
    return PublishResult(repo=repo.full_name, branch=spec.branch, base=base, commit=commit.sha, pr_number=pr.number,
                         pr_url=pr.html_url, created_branch=created_branch, created_pr=created_pr,
                         labels=list(spec.labels), reviewers=users, team_reviewers=teams,
                         files=sorted(spec.files), warnings=warnings)


def _ensure_labels(repo: "Repository", names: list[str]) -> None:
    from github.GithubException import GithubException

    existing = {label.name.lower() for label in repo.get_labels()}
    for name in names:
        if name.lower() not in existing:
            try:
                repo.create_label(name, LABEL_COLORS.get(name, "ededed"), "added by dataeng-crew")
            except GithubException as exc:
                if exc.status != 422:  # 422: created meanwhile
                    raise


def file_exists(repo: "Repository", path: str, ref: str) -> bool:
    """True when ``path`` exists on ``ref``."""
    from github.GithubException import UnknownObjectException

    try:
        repo.get_contents(path, ref=ref)
        return True
    except UnknownObjectException:
        return False


def reviewers_for(repo: "Repository", options: GithubOptions, base: str, paths: list[str]) -> list[str]:
    """``--reviewer`` values, else the CODEOWNERS owners of ``paths`` on ``base`` (``@`` stripped)."""
    if options.reviewers:
        return [r.lstrip("@") for r in options.reviewers]
    text = read_codeowners(repo, base)
    return [o.lstrip("@") for o in codeowners_for(parse_codeowners(text), paths)] if text else []


def close_pull_request(repo: "Repository", branch: str, commit: str | None) -> list[str]:
    """Rollback on GitHub: close the branch's open PRs and delete the branch if it is still at ``commit``.

    Returns:
        What was done, as short sentences.
    """
    from github.GithubException import UnknownObjectException

    done = []
    owner = repo.full_name.split("/")[0]
    for pr in repo.get_pulls(state="open", head=f"{owner}:{branch}"):
        pr.edit(state="closed")
        done.append(f"closed pull request #{pr.number}")
    try:
        ref = repo.get_git_ref(f"heads/{branch}")
        tip = ref.object.sha
    except UnknownObjectException:
        return done + [f"branch {branch} was already gone on GitHub"]
    if commit and tip != commit:
        raise PublishError(f"{branch} on GitHub moved on since the proposal ({tip[:10]} ≠ {commit[:10]}); "
                           "refusing to delete work that is not the proposal's")
    ref.delete()
    return done + [f"deleted branch {branch} on GitHub"]



def publish(target: GithubTarget, options: GithubOptions, *, branch: str, title: str, body: str, message: str,
            files: dict[str, str], approval_kinds: list[str], extra_files: dict[str, str] | None = None,
            token: str | None = None) -> PublishResult:
    """Connect, then publish ``files`` as one commit on ``branch`` and its pull request.

    Args:
        target: Repository and API.
        options: Draft, reviewers, base, retries.
        branch: e.g. ``dataeng-crew/daily-sales-mart``.
        title: PR title.
        body: PR body (cut to GitHub's limit with a pointer to the full text).
        message: Commit message.
        files: ``{repo path: content}``.
        approval_kinds: Kinds of approval the proposal needs (``governance``, ``cost``) → labels.
        extra_files: Files added only when the base branch lacks them (the CI workflow).
        token: Default: ``GITHUB_TOKEN``.

    Returns:
        What was published.

    Raises:
        ConfigError: No token.
        PublishError: Any GitHub failure, explained; a re-run converges.
    """
    token = token or token_from_env()
    repo = connect(target, options, token)
    with github_errors(target, options, token) as step:
        step("reading the base branch")
        base = options.base or repo.default_branch
        all_files = dict(files)
        for path, content in (extra_files or {}).items():
            step(f"checking whether {path} exists")
            if path not in all_files and not file_exists(repo, path, base):
                all_files[path] = content
        step("reading CODEOWNERS")
        reviewers = reviewers_for(repo, options, base, sorted(all_files))
        spec = PullRequestSpec(
            branch=branch, title=title, message=message, files=all_files, labels=labels_for(approval_kinds),
            reviewers=reviewers, draft=options.draft, base=base,
            body=fit_body(body, "_(cut to fit GitHub's limit: the full description is in the proposal's .md file "
                                "on the branch)_"))
        return publish_pull_request(repo, spec, step)
    raise AssertionError("unreachable")  # pragma: no cover
