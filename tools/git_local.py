"""Local git publishing without touching the user's working tree or current branch.

The commit is built with plumbing in a temporary index (``GIT_INDEX_FILE``): blobs are hashed
into the object store, a tree is written from the base commit plus the new files, a commit is
created on top of the base, and the branch ref is moved in one atomic ``update-ref``. Nothing is
checked out, so the user's files, index and HEAD stay exactly as they were, even on Ctrl-C.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from dataeng_crew.errors import PublishError

TRAILER = "Dataeng-Crew-Proposal"


def _git(repo: Path, *args: str, input_text: str | None = None, env: dict[str, str] | None = None,
         check: bool = True) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], input=input_text, capture_output=True, text=True,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise PublishError(f"git {' '.join(args[:2])} failed: {proc.stderr.strip()[:500]}")
    return proc.stdout.strip() if check else (proc.stdout.strip() if proc.returncode == 0 else "")


def repo_root(path: Path) -> Path | None:
    """The root of the git work tree holding ``path``, or None when it is not in a repository."""
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    return Path(proc.stdout.strip()) if proc.returncode == 0 else None


def head_commit(repo: Path) -> str:
    """The commit HEAD points at.

    Raises:
        PublishError: When the repository has no commit yet.
    """
    sha = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    if not sha:
        raise PublishError(f"{repo} has no commit yet: commit your project once, then propose again")
    return sha


def current_branch(repo: Path) -> str | None:
    """The checked-out branch name, or None when HEAD is detached."""
    return _git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False) or None


def branch_commit(repo: Path, branch: str) -> str | None:
    """The commit a local branch points at, or None."""
    return _git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False) or None


def read_at(repo: Path, rev: str, path: str) -> str | None:
    """Content of ``path`` (repo-relative, posix) at ``rev``, or None when absent."""
    proc = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{path}"], capture_output=True)
    return proc.stdout.decode("utf-8") if proc.returncode == 0 else None


def _identity(repo: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    if not _git(repo, "config", "user.name", check=False):
        env.update(GIT_AUTHOR_NAME="dataeng-crew", GIT_COMMITTER_NAME="dataeng-crew")
    if not _git(repo, "config", "user.email", check=False):
        env.update(GIT_AUTHOR_EMAIL="dataeng-crew@localhost", GIT_COMMITTER_EMAIL="dataeng-crew@localhost")
    return env


def with_trailer(message: str, proposal_id: str) -> str:
    """``message`` ending with the ``Dataeng-Crew-Proposal: <proposal_id>`` trailer (added once)."""
    line = f"{TRAILER}: {proposal_id}"
    if line in message.splitlines():
        return message
    return message.rstrip("\n") + "\n\n" + line + "\n"


def trailer_of(message: str) -> str | None:
    """The proposal id in a commit message's ``Dataeng-Crew-Proposal:`` trailer, or None."""
    return trailer_value(message, TRAILER)


def is_own_message(message: str) -> bool:
    """True for a commit message dataeng-crew wrote (the trailer, or the pre-trailer ``Proposal <id>.`` form)."""
    if re.search(rf"^{TRAILER}: \S+", message, flags=re.MULTILINE):
        return True
    return message.startswith("dataeng-crew: ") and bool(re.search(r"^Proposal \S+\. Models: ", message, re.MULTILINE))


CONTENT_TRAILER = "Dataeng-Crew-Content"
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def content_digest(changes: dict[str, str | None]) -> str:
    """A digest of what a commit changed: ``{path: new blob id, or None when deleted}`` (order-free)."""
    lines = sorted(f"{blob or '-'} {path}" for path, blob in changes.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:24]


def tree_changes(repo: Path, old: str, new: str) -> dict[str, str | None]:
    """``{path: new blob id or None}`` for every path that differs between two trees (or commits)."""
    out = _git(repo, "diff-tree", "-r", "--no-renames", "--raw", "-z", old, new)
    fields = out.split("\0")
    changes: dict[str, str | None] = {}
    for meta, path in zip(fields[0::2], fields[1::2]):
        parts = meta.split()
        if len(parts) >= 5:
            changes[path] = None if set(parts[3]) == {"0"} else parts[3]
    return changes


def is_own_commit(repo: Path, sha: str, message: str | None = None) -> bool:
    """True for a commit the tool made *with the content it recorded*: its message carries the trailer and its
    changes hash to the ``Dataeng-Crew-Content`` the tool wrote. A person's amend, rebase or cherry-pick that
    changes any file is a person's commit, even with the trailer left in the message.

    Commits from before the content was recorded (trailer, no content line) are taken by their message.
    """
    def changes() -> dict[str, str | None]:
        parent = _git(repo, "rev-parse", "--verify", "--quiet", f"{sha}^", check=False) or EMPTY_TREE
        return tree_changes(repo, parent, sha)

    return owns(commit_message(repo, sha) if message is None else message, changes)


def owns(message: str, changes: Callable[[], dict[str, str | None]]) -> bool:
    """Whether a commit with ``message`` and these ``changes`` (read only when needed) is the tool's: the trailer,
    and — when recorded — the content digest (see :func:`is_own_commit`; GitHub's commits use it too)."""
    if not is_own_message(message):
        return False
    recorded = trailer_value(message, CONTENT_TRAILER)
    return recorded is None or content_digest(changes()) == recorded


def with_content(message: str, changes: dict[str, str | None]) -> str:
    """The tool's commit message with the digest of what the commit changes (other messages as they are)."""
    if not is_own_message(message):
        return message
    return message.rstrip("\n") + f"\n{CONTENT_TRAILER}: {content_digest(changes)}"


def trailer_value(message: str, key: str) -> str | None:
    """The value of the last ``key: value`` line of a commit message, or None."""
    for line in reversed(message.splitlines()):
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip() or None
    return None


def commit_message(repo: Path, commit: str) -> str:
    """The full message of ``commit``."""
    return _git(repo, "log", "-1", "--format=%B", commit)


def foreign_commits(repo: Path, branch: str, base: str) -> list[str]:
    """Commits on ``branch`` not reachable from ``base`` that the tool did not make (see :func:`is_own_message`).

    Args:
        repo: Repository root.
        branch: Local branch name (a missing branch has no foreign commits).
        base: The commit the tool would build on.

    Returns:
        Their shas, newest first.
    """
    tip = branch_commit(repo, branch)
    if tip is None:
        return []
    out = _git(repo, "log", "--format=%H%x00%B%x01", f"{base}..{tip}")
    foreign = []
    for record in out.split("\x01"):
        record = record.strip("\n")
        if not record:
            continue
        sha, _, body = record.partition("\x00")
        if not is_own_commit(repo, sha.strip(), body):
            foreign.append(sha.strip())
    return foreign


def proposal_commit(repo: Path, branch: str, proposal_id: str) -> str | None:
    """The tip of ``branch`` when it is the commit the tool made for ``proposal_id``, else None."""
    tip = branch_commit(repo, branch)
    if tip is None:
        return None
    return tip if trailer_of(commit_message(repo, tip)) == proposal_id else None


def describe_foreign(repo: Path, branch: str, shas: list[str]) -> str:
    """A refusal message naming the foreign commits on ``branch`` and how to go on."""
    lines = _git(repo, "log", "--no-walk=unsorted", "--format=%h %an: %s", *shas[:10]).splitlines()
    more = f" (and {len(shas) - 10} more)" if len(shas) > 10 else ""
    return (f"branch {branch} holds {len(shas)} commit(s) dataeng-crew did not make: " + "; ".join(lines) + more
            + f". Refusing to move it over them. To go on: `dataeng-crew revise` to add a follow-up commit on top, "
            f"or delete the branch (`git branch -D {branch}`) if that work is not wanted, or word the request "
            "differently to get a new branch")


def check_branch_movable(repo: Path, branch: str, base: str) -> None:
    """Refuse, before any work, to move ``branch``: checked out, or holding commits the tool did not make.

    Raises:
        PublishError: Naming the branch, the foreign commits and how to go on.
    """
    if current_branch(repo) == branch:
        raise PublishError(f"branch {branch} is checked out; switch to another branch to re-run this proposal")
    _git(repo, "check-ref-format", f"refs/heads/{branch}")
    foreign = foreign_commits(repo, branch, base)
    if foreign:
        raise PublishError(describe_foreign(repo, branch, foreign))


def commit_to_branch(repo: Path, base: str, branch: str, files: dict[str, str], message: str,
                     deletions: list[str] | None = None, proposal_id: str | None = None) -> str:
    """Create ONE commit on top of ``base`` holding ``files`` and point ``branch`` at it.

    An existing branch of the same name is moved to the new commit (its old tip stays in the
    reflog) only when every commit on it was made by dataeng-crew (``Dataeng-Crew-Proposal``
    trailer), so re-running a request converges to one branch with one commit and never drops a
    person's work.

    Args:
        repo: Repository root.
        base: Commit to build on (usually HEAD).
        branch: Branch name, e.g. ``dataeng-crew/daily-sales-mart``.
        files: ``{repo_relative_posix_path: content}``.
        message: Commit message.
        deletions: Repo-relative paths to remove in the commit.
        proposal_id: Added as the ``Dataeng-Crew-Proposal`` trailer when the message lacks one (default: the
            branch's last segment).

    Returns:
        The new commit's sha.

    Raises:
        PublishError: When the branch is checked out, holds commits the tool did not make, or git fails.
    """
    if trailer_of(message) is None:  # every commit the tool makes carries its trailer
        message = with_trailer(message, proposal_id or branch.rsplit("/", 1)[-1])
    check_branch_movable(repo, branch, base)
    old = branch_commit(repo, branch) or ""
    commit = _commit_over(repo, base, files, deletions or [], message)
    try:
        _git(repo, "update-ref", "-m", "dataeng-crew propose", f"refs/heads/{branch}", commit, old)
    except PublishError as exc:
        if "lock" in str(exc) or "but expected" in str(exc) or "reference already exists" in str(exc):
            raise PublishError(f"branch {branch} was changed by another process while this proposal was built "
                               f"(another dataeng-crew run or a git command); nothing was published, run it again"
                               ) from None
        raise
    return commit


def _commit_over(repo: Path, parent: str, files: dict[str, str], deletions: list[str], message: str) -> str:
    """A commit whose tree is ``parent``'s + ``files`` − ``deletions`` (temporary index; nothing checked out)."""
    with tempfile.TemporaryDirectory(prefix="dataeng-crew-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), **_identity(repo)}
        _git(repo, "read-tree", parent, env=env)
        for path, content in sorted(files.items()):
            blob = _git(repo, "hash-object", "-w", "--stdin", input_text=content, env=env)
            _git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        for path in sorted(deletions):
            _git(repo, "update-index", "--force-remove", path, env=env)
        tree = _git(repo, "write-tree", env=env)
        message = with_content(message, tree_changes(repo, parent, tree))  # a later change of it shows
        return _git(repo, "commit-tree", tree, "-p", parent, "-m", message, env=env)


def changed_paths(repo: Path, base: str, commit: str) -> list[str]:
    """Paths that differ between two commits."""
    out = _git(repo, "diff", "--name-only", base, commit)
    return [line for line in out.splitlines() if line]


def is_merged(repo: Path, commit: str, into: str = "HEAD") -> bool:
    """True when ``commit`` is reachable from ``into`` (it was merged or fast-forwarded)."""
    return subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", commit, into],
                          capture_output=True).returncode == 0


def delete_branch(repo: Path, branch: str, expected: str) -> None:
    """Delete ``branch`` only if it still points at ``expected`` (atomic compare-and-delete)."""
    _git(repo, "update-ref", "-d", f"refs/heads/{branch}", expected)


# -- review loop: follow-up commits ------------------------------------------------------------------------

def branch_log(repo: Path, base: str, tip: str) -> list[dict[str, object]]:
    """Commits in ``base..tip`` (oldest first): sha, author, message and the paths each one changed."""
    out = _git(repo, "log", "--reverse", "--format=%x1e%H%x1f%an <%ae>%x1f%B%x1f", "--name-only", f"{base}..{tip}")
    commits = []
    for record in out.split("\x1e"):
        if not record.strip():
            continue
        sha, author, message, paths = (record.split("\x1f") + ["", "", "", ""])[:4]
        commits.append({"sha": sha.strip(), "author": author, "message": message.strip(),
                        "paths": [p for p in paths.split("\n") if p.strip()],
                        "own": is_own_commit(repo, sha.strip(), message)})
    return commits


def proposal_base(repo: Path, tip: str, limit: int = 500) -> str | None:
    """The commit a proposal branch started from: the parent of the oldest dataeng-crew commit on its first-parent
    chain (people's commits on top are skipped), or None when no commit on the chain is dataeng-crew's."""
    shas = _git(repo, "rev-list", "--first-parent", f"--max-count={limit}", tip).split()
    base = None
    for sha in shas:
        if is_own_commit(repo, sha):
            base = _git(repo, "rev-parse", "--verify", "--quiet", f"{sha}^", check=False) or None
    return base


def files_under(repo: Path, rev: str, prefix: str) -> dict[str, bytes]:
    """``{repo path: content}`` of every file under ``prefix`` (``""`` = all) at ``rev``."""
    names = _git(repo, "ls-tree", "-r", "-z", "--name-only", rev, *([prefix] if prefix else [])).split("\0")
    out = {}
    for name in (n for n in names if n):
        proc = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{name}"], capture_output=True)
        out[name] = proc.stdout
    return out


def commit_on_top(repo: Path, branch: str, tip: str, files: dict[str, str], deletions: list[str], message: str) -> str:
    """ONE commit on top of ``branch``'s ``tip`` (its tree + ``files`` − ``deletions``); the branch moves only if it
    still points at ``tip`` (compare-and-swap), so commits made meanwhile are never lost.

    Raises:
        PublishError: The branch is checked out or moved meanwhile.
    """
    if current_branch(repo) == branch:
        raise PublishError(f"branch {branch} is checked out; switch to another branch to revise it")
    commit = _commit_over(repo, tip, files, deletions, message)
    proc = subprocess.run(["git", "-C", str(repo), "update-ref", "-m", "dataeng-crew revise", f"refs/heads/{branch}",
                           commit, tip], capture_output=True, text=True)
    if proc.returncode != 0:
        raise PublishError(f"{branch} moved while revising (someone committed meanwhile); nothing was changed — "
                           "run revise again")
    return commit
