"""A local fake of the GitHub REST API, enough for PyGithub's git-data, pulls, labels and contents calls.

Real HTTP on 127.0.0.1 (``ThreadingHTTPServer`` in a thread), driven through PyGithub's ``base_url``
(``server.base_url`` = ``http://127.0.0.1:PORT/api/v3``). Behind it is an in-memory git object store
that hashes blobs, trees and commits exactly like git (so shas are real git object ids and nested
trees are built from slash paths, with ``base_tree`` semantics as on GitHub).

Every request is recorded (``server.requests``). :meth:`FakeGitHub.fail` injects a failure at a
chosen endpoint and call number: any HTTP status with headers/body (401, 403 with
``X-Accepted-GitHub-Permissions``, 404, 409, 422, 429 with ``Retry-After``, 403 rate limit with
``X-RateLimit-Reset``), or a connection drop (the socket is closed without a response, optionally
after the request took effect, like a response lost on the way back).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

PREFIX = "/api/v3"


def _hash(kind: str, payload: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(payload)}\0".encode() + payload).hexdigest()


@dataclass
class Recorded:
    """One request the server saw."""

    method: str
    path: str
    status: int
    body: dict | list | None
    headers: dict[str, str]


@dataclass
class Injection:
    """A failure to inject on the ``nth`` matching request (and the ``times - 1`` after it)."""

    method: str
    pattern: re.Pattern
    status: int = 500
    nth: int = 1
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: dict | None = None
    drop: bool = False
    after_effect: bool = False
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Count a matching request; True when this one must fail."""
        if method != self.method or not self.pattern.search(path):
            return False
        self.seen += 1
        if self.seen >= self.nth and self.fired < self.times:
            self.fired += 1
            return True
        return False


class ApiError(Exception):
    """An HTTP error response from a handler."""

    def __init__(self, status: int, message: str, errors: list | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


@dataclass
class FakeRepo:
    """One repository: git objects, refs, pulls, labels."""

    owner: str
    name: str
    default_branch: str = "main"
    objects: dict[str, tuple[str, Any]] = field(default_factory=dict)  # sha -> (kind, data)
    refs: dict[str, str] = field(default_factory=dict)  # "refs/heads/x" -> sha
    pulls: list[dict] = field(default_factory=list)
    labels: dict[str, dict] = field(default_factory=dict)
    # review loop (issue 17): reviews, review comments (+ replies), issue comments, check runs, permissions
    reviews: list[dict] = field(default_factory=list)
    review_comments: list[dict] = field(default_factory=list)
    issue_comments: list[dict] = field(default_factory=list)
    check_runs: list[dict] = field(default_factory=list)
    permissions: dict[str, str] = field(default_factory=dict)
    issues: list[dict] = field(default_factory=list)  # plain issues (issue 25: /dataeng-crew propose comments)
    next_id: int = 100

    @property
    def full_name(self) -> str:
        """owner/name."""
        return f"{self.owner}/{self.name}"

    # -- git objects ---------------------------------------------------------------------------
    def put_blob(self, content: bytes) -> str:
        """Store a blob; its git sha."""
        sha = _hash("blob", content)
        self.objects[sha] = ("blob", content)
        return sha

    def put_tree(self, entries: dict[str, tuple[str, str, str]]) -> str:
        """Store a tree ``{name: (mode, type, sha)}`` with git's entry order; its sha."""
        def key(item: tuple[str, tuple[str, str, str]]) -> bytes:
            name, (_mode, kind, _sha) = item
            return (name + "/" if kind == "tree" else name).encode()

        payload = b"".join(f"{mode if mode != '040000' else '40000'} {name}".encode() + b"\0" + bytes.fromhex(sha)
                           for name, (mode, _kind, sha) in sorted(entries.items(), key=key))
        sha = _hash("tree", payload)
        self.objects[sha] = ("tree", dict(entries))
        return sha

    def put_commit(self, tree: str, parents: list[str], message: str) -> str:
        """Store a commit; its sha."""
        who = "dataeng-crew <dataeng-crew@localhost> 1700000000 +0000"
        text = f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents) + f"author {who}\ncommitter {who}\n\n{message}"
        sha = _hash("commit", text.encode())
        self.objects[sha] = ("commit", {"tree": tree, "parents": parents, "message": message})
        return sha

    def get(self, sha: str, kind: str) -> Any:
        """An object's data, or 404/422."""
        obj = self.objects.get(sha)
        if obj is None or obj[0] != kind:
            raise ApiError(404 if kind != "tree" else 422, f"{kind} {sha} not found")
        return obj[1]

    def flatten(self, tree_sha: str, prefix: str = "") -> dict[str, tuple[str, str]]:
        """``{path: (mode, blob sha)}`` of every file under a tree."""
        out: dict[str, tuple[str, str]] = {}
        for name, (mode, kind, sha) in self.get(tree_sha, "tree").items():
            if kind == "tree":
                out.update(self.flatten(sha, f"{prefix}{name}/"))
            else:
                out[prefix + name] = (mode, sha)
        return out

    def build_tree(self, files: dict[str, tuple[str, str]]) -> str:
        """Nested trees from ``{path: (mode, blob sha)}``; the root's sha."""
        children: dict[str, dict[str, tuple[str, str]]] = {}
        entries: dict[str, tuple[str, str, str]] = {}
        for path, (mode, sha) in files.items():
            head, _, rest = path.partition("/")
            if rest:
                children.setdefault(head, {})[rest] = (mode, sha)
            else:
                entries[head] = (mode, "blob", sha)
        for name, sub in children.items():
            entries[name] = ("040000", "tree", self.build_tree(sub))
        return self.put_tree(entries)

    def files_at(self, ref_or_sha: str) -> dict[str, str]:
        """``{path: text}`` of every file in a commit (by sha or branch name), for tests."""
        sha = self.refs.get(f"refs/heads/{ref_or_sha}", ref_or_sha)
        commit = self.get(sha, "commit")
        return {p: self.get(b, "blob").decode() for p, (_m, b) in self.flatten(commit["tree"]).items()}

    def new_id(self) -> int:
        """A fresh id for a review, comment or check run."""
        self.next_id += 1
        return self.next_id

    def push(self, branch: str, files: dict[str, str], message: str, deletions: tuple[str, ...] = ()) -> str:
        """A person's commit on ``branch`` (its tree + ``files``), as a push would make it; its sha."""
        tip = self.refs[f"refs/heads/{branch}"]
        tree = self.flatten(self.get(tip, "commit")["tree"])
        for path in deletions:
            tree.pop(path, None)
        tree.update({p: ("100644", self.put_blob(c.encode())) for p, c in files.items()})
        sha = self.put_commit(self.build_tree(tree), [tip], message)
        self.refs[f"refs/heads/{branch}"] = sha
        return sha

    def commits(self, branch: str) -> list[dict]:
        """The first-parent chain of ``branch``, newest first (sha, message, parents)."""
        out, sha = [], self.refs[f"refs/heads/{branch}"]
        while sha:
            c = self.get(sha, "commit")
            out.append({"sha": sha, **c})
            sha = c["parents"][0] if c["parents"] else ""
        return out

    def branches(self) -> list[str]:
        """Branch names."""
        return sorted(r.removeprefix("refs/heads/") for r in self.refs if r.startswith("refs/heads/"))


class FakeGitHub:
    """The server. Use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(self, token: str = "ghp_fake_token", login: str = "dataeng-bot") -> None:
        self.token, self.login = token, login
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[Recorded] = []
        self.injections: list[Injection] = []
        self.lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "FakeGitHub":
        """Listen on 127.0.0.1 on a free port."""
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> "FakeGitHub":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root(self) -> str:
        """``http://127.0.0.1:PORT``."""
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def base_url(self) -> str:
        """PyGithub ``base_url`` (GitHub Enterprise form)."""
        return self.root + PREFIX

    # -- setup and assertions ------------------------------------------------------------------
    def create_repo(self, full_name: str, files: dict[str, str] | None = None, default_branch: str = "main") -> FakeRepo:
        """A repository with one initial commit holding ``files`` on ``default_branch``."""
        owner, name = full_name.split("/")
        repo = FakeRepo(owner, name, default_branch)
        blobs = {p: ("100644", repo.put_blob(c.encode())) for p, c in (files or {"README.md": "# repo\n"}).items()}
        repo.refs[f"refs/heads/{default_branch}"] = repo.put_commit(repo.build_tree(blobs), [], "initial commit")
        self.repos[full_name.lower()] = repo
        return repo

    # -- review loop (issue 17) ------------------------------------------------------------------
    def add_review(self, full_name: str, number: int, user: str, state: str, body: str) -> dict:
        """A submitted review (``CHANGES_REQUESTED``, ``COMMENTED``, ``APPROVED``)."""
        repo = self.repos[full_name.lower()]
        review = {"id": repo.new_id(), "number": number, "user": user, "state": state, "body": body}
        repo.reviews.append(review)
        return review

    def add_review_comment(self, full_name: str, number: int, user: str, body: str, path: str | None = None,
                           line: int | None = None, in_reply_to: int | None = None) -> dict:
        """A review comment: on a line (``path``, ``line``) or top-level; ``in_reply_to`` makes it a reply."""
        repo = self.repos[full_name.lower()]
        comment = {"id": repo.new_id(), "number": number, "user": user, "body": body, "path": path or "",
                   "line": line, "in_reply_to_id": in_reply_to}
        repo.review_comments.append(comment)
        return comment

    def add_issue_comment(self, full_name: str, number: int, user: str, body: str) -> dict:
        """A comment in the PR's conversation."""
        repo = self.repos[full_name.lower()]
        comment = {"id": repo.new_id(), "number": number, "user": user, "body": body}
        repo.issue_comments.append(comment)
        return comment

    def add_check_run(self, full_name: str, sha: str, name: str, conclusion: str, summary: str = "",
                      text: str = "", annotations: list[str] | None = None) -> dict:
        """A completed check run on commit ``sha`` (``annotations``: the messages of ``::error::`` lines)."""
        repo = self.repos[full_name.lower()]
        run = {"id": repo.new_id(), "head_sha": sha, "name": name, "status": "completed", "conclusion": conclusion,
               "output": {"title": f"{name}: {conclusion}", "summary": summary, "text": text,
                          "annotations_count": len(annotations or [])},
               "annotations": [{"path": ".github", "start_line": 1, "end_line": 1, "annotation_level": "failure",
                                "title": name, "message": m} for m in annotations or []]}
        repo.check_runs.append(run)
        return run

    def create_issue(self, full_name: str, title: str, user: str = "analyst") -> int:
        """A plain issue (not a pull request); numbered from 1000 so it never meets a PR's number."""
        repo = self.repos[full_name.lower()]
        number = 1000 + len(repo.issues) + 1
        repo.issues.append({"number": number, "title": title, "user": user, "state": "open"})
        return number

    def set_permission(self, full_name: str, user: str, permission: str) -> None:
        """A collaborator's permission: ``admin``, ``maintain``, ``write``, ``triage``, ``read`` (else ``none``)."""
        self.repos[full_name.lower()].permissions[user] = permission

    def fail(self, method: str, path: str, status: int = 500, *, nth: int = 1, times: int = 1,
             headers: dict[str, str] | None = None, message: str | None = None, drop: bool = False,
             after_effect: bool = False) -> Injection:
        """Make the ``nth`` request matching ``method`` and the regex ``path`` fail (``times`` times).

        Args:
            method: HTTP method.
            path: Regex searched in the request path (e.g. ``r"/git/refs$"``).
            status: HTTP status to answer with.
            nth: Which matching call fails first (1 = the first).
            times: How many consecutive matching calls fail.
            headers: Extra response headers (``Retry-After``, ``X-Accepted-GitHub-Permissions``, ...).
            message: The JSON ``message``.
            drop: Close the connection without any response instead.
            after_effect: Apply the request to the state first, then fail/drop (a lost response).
        """
        inj = Injection(method.upper(), re.compile(path), status, nth, times, dict(headers or {}),
                        {"message": message or "injected failure", "documentation_url": "https://docs.github.com"},
                        drop, after_effect)
        with self.lock:
            self.injections.append(inj)
        return inj

    def clear_failures(self) -> None:
        """Remove every injection."""
        with self.lock:
            self.injections.clear()

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """Recorded requests, filtered by method and a path regex."""
        return [r for r in self.requests if (method is None or r.method == method)
                and (path is None or re.search(path, r.path))]

    # -- JSON shapes ---------------------------------------------------------------------------
    def repo_url(self, repo: FakeRepo) -> str:
        """API url of a repo."""
        return f"{self.base_url}/repos/{repo.full_name}"

    def repo_json(self, repo: FakeRepo) -> dict:
        """GET /repos/o/n."""
        url = self.repo_url(repo)
        return {"id": abs(hash(repo.full_name)) % 10**8, "name": repo.name, "full_name": repo.full_name,
                "owner": {"login": repo.owner, "type": "Organization"}, "private": True,
                "default_branch": repo.default_branch, "url": url, "html_url": f"{self.root}/{repo.full_name}",
                "permissions": {"admin": False, "push": True, "pull": True}}

    def ref_json(self, repo: FakeRepo, ref: str) -> dict:
        """A git ref."""
        sha = repo.refs[ref]
        return {"ref": ref, "url": f"{self.repo_url(repo)}/git/{ref}", "node_id": ref,
                "object": {"sha": sha, "type": "commit", "url": f"{self.repo_url(repo)}/git/commits/{sha}"}}

    def commit_json(self, repo: FakeRepo, sha: str) -> dict:
        """A git commit."""
        c = repo.get(sha, "commit")
        url = self.repo_url(repo)
        return {"sha": sha, "url": f"{url}/git/commits/{sha}", "message": c["message"],
                "tree": {"sha": c["tree"], "url": f"{url}/git/trees/{c['tree']}"},
                "parents": [{"sha": p, "url": f"{url}/git/commits/{p}"} for p in c["parents"]],
                "author": {"name": "dataeng-crew", "email": "dataeng-crew@localhost", "date": "2026-01-01T00:00:00Z"},
                "committer": {"name": "dataeng-crew", "email": "dataeng-crew@localhost", "date": "2026-01-01T00:00:00Z"}}

    def tree_json(self, repo: FakeRepo, sha: str, recursive: bool = False) -> dict:
        """A git tree (one level, or recursive)."""
        url = self.repo_url(repo)
        if recursive:
            items = [{"path": p, "mode": m, "type": "blob", "sha": b, "url": f"{url}/git/blobs/{b}"}
                     for p, (m, b) in sorted(repo.flatten(sha).items())]
        else:
            items = [{"path": n, "mode": m, "type": k, "sha": s, "url": f"{url}/git/{k}s/{s}"}
                     for n, (m, k, s) in sorted(repo.get(sha, "tree").items())]
        return {"sha": sha, "url": f"{url}/git/trees/{sha}", "tree": items, "truncated": False}

    def pull_json(self, repo: FakeRepo, pr: dict) -> dict:
        """A pull request."""
        url = self.repo_url(repo)
        return {"id": pr["number"] * 1000, "number": pr["number"], "url": f"{url}/pulls/{pr['number']}",
                "html_url": f"{self.root}/{repo.full_name}/pull/{pr['number']}",
                "issue_url": f"{url}/issues/{pr['number']}", "state": pr["state"], "title": pr["title"],
                "body": pr["body"], "draft": pr["draft"], "merged": False, "user": {"login": self.login},
                "head": {"ref": pr["head"], "label": f"{repo.owner}:{pr['head']}",
                         "sha": repo.refs.get(f"refs/heads/{pr['head']}", "")},
                "base": {"ref": pr["base"], "label": f"{repo.owner}:{pr['base']}",
                         "sha": repo.refs.get(f"refs/heads/{pr['base']}", "")},
                "labels": [self.label_json(repo, n) for n in pr["labels"]],
                "requested_reviewers": [{"login": u} for u in pr["reviewers"]],
                "requested_teams": [{"slug": t, "name": t} for t in pr["teams"]]}

    def label_json(self, repo: FakeRepo, name: str) -> dict:
        """A label."""
        lab = repo.labels.get(name.lower(), {"name": name, "color": "ededed", "description": None})
        return {**lab, "url": f"{self.repo_url(repo)}/labels/{lab['name']}"}


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeGitHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        return

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        fake = self.server_fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        parsed = urlparse(self.path)
        path, query = parsed.path, {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        with fake.lock:
            inj = next((i for i in fake.injections if i.matches(method, path)), None)
            if inj is not None and not inj.after_effect:
                self._inject(fake, inj, method, path, body, headers)
                return
            status, payload, extra = self._route(fake, method, path, query, body, headers)
            fake.requests.append(Recorded(method, path, status if inj is None else (0 if inj.drop else inj.status),
                                          body, headers))
        if inj is not None:
            self._inject(fake, inj, method, path, body, headers, record=False)
            return
        self._send(status, payload, extra)

    def _inject(self, fake: FakeGitHub, inj: Injection, method: str, path: str, body: Any, headers: dict,
                record: bool = True) -> None:
        if record:
            fake.requests.append(Recorded(method, path, 0 if inj.drop else inj.status, body, headers))
        if inj.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._send(inj.status, inj.body, inj.headers)

    def _send(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999",
                   "X-RateLimit-Reset": str(int(time.time()) + 3600)}
        headers.update(extra or {})  # an injected header replaces the default, never duplicates it
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)

    # -- routing -------------------------------------------------------------------------------
    def _route(self, fake: FakeGitHub, method: str, path: str, query: dict, body: Any, headers: dict
               ) -> tuple[int, Any, dict]:
        auth = headers.get("authorization", "")
        if auth not in {f"token {fake.token}", f"Bearer {fake.token}"}:
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, {}
        if not path.startswith(PREFIX + "/"):
            return 404, {"message": "Not Found"}, {}
        rest = path[len(PREFIX):]
        if rest == "/user":
            return 200, {"login": fake.login, "type": "User"}, {}
        m = re.match(r"^/repos/([^/]+)/([^/]+)(/.*)?$", rest)
        if not m or f"{m[1]}/{m[2]}".lower() not in fake.repos:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
        repo = fake.repos[f"{m[1]}/{m[2]}".lower()]
        sub = unquote(m[3] or "")
        try:
            return _Routes(fake, repo).dispatch(method, sub, query, body or {})
        except (KeyError, TypeError, ValueError) as exc:  # a request the fake does not understand: a 400, not a hang
            return 400, {"message": f"fake GitHub: bad request ({type(exc).__name__}: {exc})"}, {}
        except ApiError as exc:
            payload: dict[str, Any] = {"message": exc.message, "documentation_url": "https://docs.github.com/rest"}
            if exc.errors:
                payload["errors"] = exc.errors
            return exc.status, payload, {}


class _Routes:
    def __init__(self, fake: FakeGitHub, repo: FakeRepo) -> None:
        self.fake, self.repo = fake, repo

    def dispatch(self, method: str, sub: str, query: dict, body: dict) -> tuple[int, Any, dict]:
        table = [
            ("GET", r"^$", self.get_repo),
            ("POST", r"^/git/blobs$", self.post_blob),
            ("GET", r"^/git/blobs/(\w+)$", self.get_blob),
            ("POST", r"^/git/trees$", self.post_tree),
            ("GET", r"^/git/trees/(\w+)$", self.get_tree),
            ("POST", r"^/git/commits$", self.post_commit),
            ("GET", r"^/git/commits/(\w+)$", self.get_commit),
            ("GET", r"^/git/refs?/(.+)$", self.get_ref),
            ("POST", r"^/git/refs$", self.post_ref),
            ("PATCH", r"^/git/refs/(.+)$", self.patch_ref),
            ("DELETE", r"^/git/refs/(.+)$", self.delete_ref),
            ("GET", r"^/pulls$", self.list_pulls),
            ("POST", r"^/pulls$", self.post_pull),
            ("GET", r"^/pulls/(\d+)$", self.get_pull),
            ("PATCH", r"^/pulls/(\d+)$", self.patch_pull),
            ("POST", r"^/pulls/(\d+)/requested_reviewers$", self.post_reviewers),
            ("GET", r"^/issues/(\d+)/labels$", self.get_issue_labels),
            ("POST", r"^/issues/(\d+)/labels$", self.post_issue_labels),
            ("PUT", r"^/issues/(\d+)/labels$", self.put_issue_labels),
            ("DELETE", r"^/issues/(\d+)/labels/(.+)$", self.delete_issue_label),
            ("GET", r"^/labels$", self.list_labels),
            ("POST", r"^/labels$", self.post_label),
            ("GET", r"^/labels/(.+)$", self.get_label),
            ("GET", r"^/contents/(.+)$", self.get_contents),
            ("GET", r"^/pulls/(\d+)/reviews$", self.list_reviews),
            ("GET", r"^/pulls/(\d+)/comments$", self.list_review_comments),
            ("POST", r"^/pulls/(\d+)/comments/(\d+)/replies$", self.post_review_reply),
            ("GET", r"^/issues/(\d+)$", self.get_issue),
            ("GET", r"^/issues/(\d+)/comments$", self.list_issue_comments),
            ("POST", r"^/issues/(\d+)/comments$", self.post_issue_comment),
            ("GET", r"^/commits/(\w+)$", self.get_rest_commit),
            ("GET", r"^/commits/(\w+)/check-runs$", self.list_check_runs),
            ("GET", r"^/check-runs/(\d+)/annotations$", self.list_annotations),
            ("GET", r"^/collaborators/([^/]+)/permission$", self.get_permission),
        ]
        for verb, pattern, fn in table:
            m = re.match(pattern, sub)
            if verb == method and m:
                return fn(query, body, *m.groups())
        raise ApiError(404, f"Not Found: {method} {sub}")

    # repo and git data
    def get_repo(self, query: dict, body: dict) -> tuple[int, Any, dict]:
        return 200, self.fake.repo_json(self.repo), {}

    def post_blob(self, query: dict, body: dict) -> tuple[int, Any, dict]:
        content = body.get("content", "")
        data = base64.b64decode(content) if body.get("encoding") == "base64" else content.encode()
        sha = self.repo.put_blob(data)
        return 201, {"sha": sha, "url": f"{self.fake.repo_url(self.repo)}/git/blobs/{sha}"}, {}

    def get_blob(self, query: dict, body: dict, sha: str) -> tuple[int, Any, dict]:
        data = self.repo.get(sha, "blob")
        return 200, {"sha": sha, "size": len(data), "encoding": "base64",
                     "content": base64.b64encode(data).decode()}, {}

    def post_tree(self, query: dict, body: dict) -> tuple[int, Any, dict]:
        files = self.repo.flatten(body["base_tree"]) if body.get("base_tree") else {}
        for item in body.get("tree", []):
            path = item["path"]
            if item.get("sha") is None and "content" not in item:
                files.pop(path, None)
                continue
            if "content" in item:
                sha = self.repo.put_blob(item["content"].encode())
            else:
                sha = item["sha"]
                self.repo.get(sha, "blob")
            files[path] = (item.get("mode", "100644"), sha)
        if not files:
            raise ApiError(422, "tree is empty")
        return 201, self.fake.tree_json(self.repo, self.repo.build_tree(files)), {}

    def get_tree(self, query: dict, body: dict, sha: str) -> tuple[int, Any, dict]:
        return 200, self.fake.tree_json(self.repo, sha, recursive=bool(query.get("recursive"))), {}

    def post_commit(self, query: dict, body: dict) -> tuple[int, Any, dict]:
        self.repo.get(body["tree"], "tree")
        for p in body.get("parents", []):
            self.repo.get(p, "commit")
        sha = self.repo.put_commit(body["tree"], list(body.get("parents", [])), body["message"])
        return 201, self.fake.commit_json(self.repo, sha), {}

    def get_commit(self, query: dict, body: dict, sha: str) -> tuple[int, Any, dict]:
        return 200, self.fake.commit_json(self.repo, sha), {}

    def get_ref(self, query: dict, body: dict, ref: str) -> tuple[int, Any, dict]:
        full = ref if ref.startswith("refs/") else f"refs/{ref}"
        if full not in self.repo.refs:
            raise ApiError(404, "Not Found")
        return 200, self.fake.ref_json(self.repo, full), {}

    def post_ref(self, query: dict, body: dict) -> tuple[int, Any, dict]:
        ref, sha = body["ref"], body["sha"]
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, "Reference name is invalid")
        if ref in self.repo.refs:
            raise ApiError(422, "Reference already exists")
        self.repo.get(sha, "commit")
        self.repo.refs[ref] = sha
        return 201, self.fake.ref_json(self.repo, ref), {}

    def patch_ref(self, query: dict, body: dict, ref: str) -> tuple[int, Any, dict]:
        full = ref if ref.startswith("refs/") else f"refs/{ref}"
        if full not in self.repo.refs:
            raise ApiError(422, "Reference does not exist")
        sha = body["sha"]
        self.repo.get(sha, "commit")
        if not body.get("force") and not self._is_ancestor(self.repo.refs[full], sha):
            raise ApiError(422, "Update is not a fast forward")
        self.repo.refs[full] = sha
        return 200, self.fake.ref_json(self.repo, full), {}

    def _is_ancestor(self, old: str, new: str) -> bool:
        todo = [new]
        while todo:
            sha = todo.pop()
            if sha == old:
                return True
            todo += self.repo.get(sha, "commit")["parents"]
        return False

    def delete_ref(self, query: dict, body: dict, ref: str) -> tuple[int, Any, dict]:
        full = ref if ref.startswith("refs/") else f"refs/{ref}"
        if full not in self.repo.refs:
            raise ApiError(422, "Reference does not exist")
        del self.repo.refs[full]
        return 204, None, {}

    # pulls
    def _pull(self, number: str) -> dict:
        for pr in self.repo.pulls:
            if pr["number"] == int(number):
                return pr
        raise ApiError(404, "Not Found")

    def list_pulls(self, query: dict, body: dict) -> tuple[int, Any, dict]:
        state = query.get("state", "open")
        head = query.get("head")
        out = [pr for pr in self.repo.pulls if (state == "all" or pr["state"] == state)
               and (head is None or f"{self.repo.owner}:{pr['head']}" == head or pr["head"] == head)
               and (query.get("base") is None or pr["base"] == query["base"])]
        return 200, [self.fake.pull_json(self.repo, pr) for pr in out], {}

    def post_pull(self, query: dict, body: dict) -> tuple[int, Any, dict]:
        head = body["head"].split(":", 1)[-1]
        base = body["base"]
        if f"refs/heads/{head}" not in self.repo.refs or f"refs/heads/{base}" not in self.repo.refs:
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "field": "head", "code": "invalid"}])
        if any(p["head"] == head and p["base"] == base and p["state"] == "open" for p in self.repo.pulls):
            raise ApiError(422, "Validation Failed", [{"resource": "PullRequest", "code": "custom",
                           "message": f"A pull request already exists for {self.repo.owner}:{head}."}])
        pr = {"number": len(self.repo.pulls) + 1, "state": "open", "title": body.get("title", ""),
              "body": body.get("body", ""), "draft": bool(body.get("draft")), "head": head, "base": base,
              "labels": [], "reviewers": [], "teams": []}
        self.repo.pulls.append(pr)
        return 201, self.fake.pull_json(self.repo, pr), {}

    def get_pull(self, query: dict, body: dict, number: str) -> tuple[int, Any, dict]:
        return 200, self.fake.pull_json(self.repo, self._pull(number)), {}

    def patch_pull(self, query: dict, body: dict, number: str) -> tuple[int, Any, dict]:
        pr = self._pull(number)
        for key in ("title", "body", "state", "base"):
            if key in body:
                pr[key] = body[key]
        return 200, self.fake.pull_json(self.repo, pr), {}

    def post_reviewers(self, query: dict, body: dict, number: str) -> tuple[int, Any, dict]:
        pr = self._pull(number)
        users = body.get("reviewers", [])
        if self.fake.login in users:
            raise ApiError(422, "Review cannot be requested from pull request author.")
        pr["reviewers"] = sorted(set(pr["reviewers"]) | set(users))
        pr["teams"] = sorted(set(pr["teams"]) | set(body.get("team_reviewers", [])))
        return 201, self.fake.pull_json(self.repo, pr), {}

    # labels
    def get_issue_labels(self, query: dict, body: dict, number: str) -> tuple[int, Any, dict]:
        return 200, [self.fake.label_json(self.repo, n) for n in self._pull(number)["labels"]], {}

    def post_issue_labels(self, query: dict, body: dict, number: str) -> tuple[int, Any, dict]:
        pr = self._pull(number)
        for name in (body if isinstance(body, list) else body.get("labels", [])):
            self.repo.labels.setdefault(name.lower(), {"name": name, "color": "ededed", "description": None})
            if name not in pr["labels"]:
                pr["labels"].append(name)
        return 200, [self.fake.label_json(self.repo, n) for n in pr["labels"]], {}

    def put_issue_labels(self, query: dict, body: dict, number: str) -> tuple[int, Any, dict]:
        self._pull(number)["labels"] = []
        return self.post_issue_labels(query, body, number)

    def delete_issue_label(self, query: dict, body: dict, number: str, name: str) -> tuple[int, Any, dict]:
        pr = self._pull(number)
        if name not in pr["labels"]:
            raise ApiError(404, "Label does not exist")
        pr["labels"].remove(name)
        return 200, [self.fake.label_json(self.repo, n) for n in pr["labels"]], {}

    def list_labels(self, query: dict, body: dict) -> tuple[int, Any, dict]:
        return 200, [self.fake.label_json(self.repo, lab["name"]) for lab in self.repo.labels.values()], {}

    def post_label(self, query: dict, body: dict) -> tuple[int, Any, dict]:
        if body["name"].lower() in self.repo.labels:
            raise ApiError(422, "Validation Failed", [{"resource": "Label", "code": "already_exists", "field": "name"}])
        self.repo.labels[body["name"].lower()] = {"name": body["name"], "color": body["color"],
                                                  "description": body.get("description")}
        return 201, self.fake.label_json(self.repo, body["name"]), {}

    def get_label(self, query: dict, body: dict, name: str) -> tuple[int, Any, dict]:
        if name.lower() not in self.repo.labels:
            raise ApiError(404, "Not Found")
        return 200, self.fake.label_json(self.repo, name), {}

    # contents
    def get_contents(self, query: dict, body: dict, path: str) -> tuple[int, Any, dict]:
        ref = query.get("ref") or self.repo.default_branch
        sha = self.repo.refs.get(f"refs/heads/{ref}", ref)
        files = self.repo.flatten(self.repo.get(sha, "commit")["tree"])
        if path not in files:
            raise ApiError(404, "Not Found")
        data = self.repo.get(files[path][1], "blob")
        url = f"{self.fake.repo_url(self.repo)}/contents/{path}"
        return 200, {"type": "file", "encoding": "base64", "size": len(data), "name": path.rsplit("/", 1)[-1],
                     "path": path, "sha": files[path][1], "url": url, "content": base64.b64encode(data).decode()}, {}

    # review loop (issue 17)
    def _user(self, login: str) -> dict:
        return {"login": login, "id": abs(hash(login)) % 10**6, "type": "User"}

    def _review_json(self, r: dict) -> dict:
        url = self.fake.repo_url(self.repo)
        return {"id": r["id"], "user": self._user(r["user"]), "body": r["body"], "state": r["state"],
                "commit_id": "", "submitted_at": "2026-01-01T00:00:00Z",
                "pull_request_url": f"{url}/pulls/{r['number']}",
                "html_url": f"{self.fake.root}/{self.repo.full_name}/pull/{r['number']}#pullrequestreview-{r['id']}"}

    def _review_comment_json(self, c: dict) -> dict:
        url = self.fake.repo_url(self.repo)
        out = {"id": c["id"], "user": self._user(c["user"]), "body": c["body"], "path": c["path"],
               "line": c["line"], "original_line": c["line"], "created_at": "2026-01-01T00:00:00Z",
               "url": f"{url}/pulls/comments/{c['id']}", "pull_request_url": f"{url}/pulls/{c['number']}",
               "in_reply_to_id": c.get("in_reply_to_id")}
        return out

    def _issue_comment_json(self, c: dict) -> dict:
        url = self.fake.repo_url(self.repo)
        return {"id": c["id"], "user": self._user(c["user"]), "body": c["body"], "created_at": "2026-01-01T00:00:00Z",
                "url": f"{url}/issues/comments/{c['id']}", "issue_url": f"{url}/issues/{c['number']}"}

    def list_reviews(self, query: dict, body: dict, number: str) -> tuple[int, Any, dict]:
        self._pull(number)
        return 200, [self._review_json(r) for r in self.repo.reviews if r["number"] == int(number)], {}

    def list_review_comments(self, query: dict, body: dict, number: str) -> tuple[int, Any, dict]:
        self._pull(number)
        return 200, [self._review_comment_json(c) for c in self.repo.review_comments if c["number"] == int(number)], {}

    def post_review_reply(self, query: dict, body: dict, number: str, comment_id: str) -> tuple[int, Any, dict]:
        self._pull(number)
        parent = next((c for c in self.repo.review_comments if c["id"] == int(comment_id)), None)
        if parent is None:
            raise ApiError(404, "Not Found")
        reply = {"id": self.repo.new_id(), "number": int(number), "user": self.fake.login, "body": body["body"],
                 "path": parent["path"], "line": parent["line"], "in_reply_to_id": parent["id"]}
        self.repo.review_comments.append(reply)
        return 201, self._review_comment_json(reply), {}

    def _issue_or_pull(self, number: str) -> dict:
        for issue in self.repo.issues:
            if issue["number"] == int(number):
                return issue
        return self._pull(number)

    def get_issue(self, query: dict, body: dict, number: str) -> tuple[int, Any, dict]:
        found = self._issue_or_pull(number)
        url = self.fake.repo_url(self.repo)
        out = {"id": int(number), "number": int(number), "title": found.get("title", ""), "state": found["state"],
               "user": self._user(found.get("user", "analyst")), "url": f"{url}/issues/{number}",
               "comments_url": f"{url}/issues/{number}/comments", "labels": [], "body": ""}
        if found in self.repo.pulls:
            out["pull_request"] = {"url": f"{url}/pulls/{number}"}
        return 200, out, {}

    def list_issue_comments(self, query: dict, body: dict, number: str) -> tuple[int, Any, dict]:
        self._issue_or_pull(number)
        return 200, [self._issue_comment_json(c) for c in self.repo.issue_comments if c["number"] == int(number)], {}

    def post_issue_comment(self, query: dict, body: dict, number: str) -> tuple[int, Any, dict]:
        self._issue_or_pull(number)
        comment = {"id": self.repo.new_id(), "number": int(number), "user": self.fake.login, "body": body["body"]}
        self.repo.issue_comments.append(comment)
        return 201, self._issue_comment_json(comment), {}

    def get_rest_commit(self, query: dict, body: dict, sha: str) -> tuple[int, Any, dict]:
        git = self.fake.commit_json(self.repo, sha)
        return 200, {"sha": sha, "url": f"{self.fake.repo_url(self.repo)}/commits/{sha}", "commit": git,
                     "parents": git["parents"], "files": []}, {}

    def list_check_runs(self, query: dict, body: dict, sha: str) -> tuple[int, Any, dict]:
        url = self.fake.repo_url(self.repo)
        runs = [{k: v for k, v in r.items() if k != "annotations"} | {"url": f"{url}/check-runs/{r['id']}"}
                for r in self.repo.check_runs if r["head_sha"] == sha]
        return 200, {"total_count": len(runs), "check_runs": runs}, {}

    def list_annotations(self, query: dict, body: dict, run_id: str) -> tuple[int, Any, dict]:
        run = next((r for r in self.repo.check_runs if r["id"] == int(run_id)), None)
        if run is None:
            raise ApiError(404, "Not Found")
        return 200, run["annotations"], {}

    def get_permission(self, query: dict, body: dict, user: str) -> tuple[int, Any, dict]:
        permission = self.repo.permissions.get(user, "none")
        return 200, {"permission": permission, "role_name": permission, "user": self._user(user)}, {}
