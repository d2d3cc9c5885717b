"""`dataeng-crew serve` (issue 25): the real server on a free loopback port, driven over HTTP.

Real proposals (the flow, dbt build, the fake GitHub): one API round trip to a published PR, one approval flow, one
webhook flow. Queue, drain, restart and load use a stub job runner injected into the worker.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from dataeng_crew.service.app import create_app
from dataeng_crew.service.config import ServeConfig
from dataeng_crew.service.jobs import JobOutcome
from dataeng_crew.service.runtime import build_service
from dataeng_crew.service.server import ThreadedServer
from dataeng_crew.service.store import TERMINAL, Store
from tests.conftest import REPO, git, make_git_project
from tests.fakes.github_server import FakeGitHub

GH_TOKEN = "ghp_SERVEsecret0123456789abcdefFAKE"
ALICE = "alice-token-0123456789-approver"
BOB = "bob-token-0123456789-analyst-xx"
HOOK_SECRET = "whsec-serve-9876543210-fedcba"
SECRETS = (GH_TOKEN, ALICE, BOB, HOOK_SECRET)
REPO_NAME = "acme/shop"
ARTIFACTS = Path(os.environ.get("DATAENG_CREW_TEST_ARTIFACTS", REPO / "test-artifacts"))


def _config(fake_url: str | None = None, **extra) -> ServeConfig:
    data = {"tokens": [{"name": "alice", "token": ALICE, "identities": ["@alice", "@data-governance"]},
                       {"name": "bob", "token": BOB, "identities": ["@bob"]}],
            "webhook_secret": HOOK_SECRET, "publish": "github" if fake_url else "none", "queue_size": 20,
            "github": {"repo": REPO_NAME, "api_url": fake_url, "throttle": False}, **extra}
    return ServeConfig.model_validate(data)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _wait(client: httpx.Client, job_id: str, statuses=TERMINAL | {"awaiting_approval"}, timeout: float = 300.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/proposals/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not reach {sorted(statuses)}: {job}")


def _signed(body: bytes, secret: str = HOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _hook(client: httpx.Client, event: str, payload: dict, delivery: str | None = None, secret: str = HOOK_SECRET,
          signature: str | None = None) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "X-Hub-Signature-256": signature if signature is not None else _signed(body, secret),
               "Content-Type": "application/json"}
    return client.post("/github/webhook", content=body, headers=headers)


def _comment(number: int, user: str, body: str, pull: bool = False) -> dict:
    issue = {"number": number, "title": "x", **({"pull_request": {"url": "u"}} if pull else {})}
    return {"action": "created", "issue": issue, "comment": {"id": 1, "body": body, "user": {"login": user}},
            "repository": {"full_name": REPO_NAME}}


# -------------------------------------------------------------------------------- the real flow


def _published(live: dict, request: str) -> dict:
    """The published job of ``request`` in this service, made through the API when no earlier test made it (the
    tests stay independent when pytest-xdist spreads them over workers, each with its own service)."""
    client = live["client"]
    found = [j for j in client.get("/api/v1/proposals").json() if j["request"] == request and j["status"] == "published"]
    if found:
        return found[0]
    created = client.post("/api/v1/proposals", json={"request": request}, headers=_auth(BOB))
    job = _wait(client, created.json()["id"])
    assert job["status"] == "published", job
    return job


@pytest.fixture(scope="module")
def live(tmp_path_factory, sample_warehouse):
    """The service on a git copy of the sample project, publishing to the fake GitHub with the real flow."""
    project = make_git_project(tmp_path_factory.mktemp("serve") / "repo", sample_warehouse)
    git(project.parent, "remote", "add", "origin", f"git@github.com:{REPO_NAME}.git")
    fake = FakeGitHub(token=GH_TOKEN).start()
    tracked = git(project.parent, "ls-files").splitlines()  # GitHub holds what the local main holds
    fake.create_repo(REPO_NAME, {p: (project.parent / p).read_text() for p in tracked})
    old = os.environ.get("GITHUB_TOKEN")
    os.environ["GITHUB_TOKEN"] = GH_TOKEN
    service = build_service(project, config=_config(fake.base_url))
    server = ThreadedServer(create_app(service)).start()
    client = httpx.Client(base_url=server.url, timeout=60)
    responses: list[str] = []
    client.event_hooks["response"] = [lambda r: (r.read(), responses.append(r.text))]
    yield {"project": project, "repo": project.parent, "fake": fake, "service": service, "client": client,
           "server": server, "responses": responses}
    client.close()
    server.stop()
    fake.stop()
    if old is None:
        os.environ.pop("GITHUB_TOKEN", None)
    else:
        os.environ["GITHUB_TOKEN"] = old


@pytest.mark.slow
def test_api_round_trip_to_a_published_pull_request(live):
    client, fake = live["client"], live["fake"]
    assert client.post("/api/v1/proposals", json={"request": "daily_sales mart"}).status_code == 401
    assert client.post("/api/v1/proposals", json={"request": "daily_sales mart"},
                       headers=_auth("not-a-token-at-all-xxxx")).status_code == 401
    created = client.post("/api/v1/proposals", json={"request": "daily_sales mart"}, headers=_auth(BOB))
    assert created.status_code == 202, created.text
    job = _wait(client, created.json()["id"])
    assert job["status"] == "published", job
    result = job["result"]
    assert result["branch"] == "dataeng-crew/daily-sales-mart" and result["build"]["success"]
    pr = result["pull_request"]
    assert pr["number"] >= 1 and pr["branch"] == result["branch"] and pr["repo"] == REPO_NAME
    assert f"refs/heads/{result['branch']}" in fake.repos[REPO_NAME].refs
    assert git(live["repo"], "rev-parse", result["branch"]) == result["commit"]
    assert Path(job["proposal_dir"], "report.json").is_file()
    names = [s["stage"] for s in job["stages"]]
    assert "dbt build (sandbox)" in names and "publish (GitHub pull request)" in names
    assert all(s["seconds"] >= 0 for s in job["stages"]) and "data_diffs" in result
    assert job["exit_code"] is None and job["http_status"] == 200
    assert any(j["id"] == job["id"] for j in client.get("/api/v1/proposals").json())
    metrics = client.get("/metrics").text
    assert 'dataeng_crew_proposals_total{kind="propose",outcome="published"}' in metrics
    assert 'dataeng_crew_stage_duration_seconds_count{stage="dbt build (sandbox)"}' in metrics
    assert "dataeng_crew_queue_depth" in metrics
    assert client.get("/openapi.json").json()["paths"]["/api/v1/proposals/{job_id}/approve"]
    refused = client.post("/api/v1/proposals", json={"request": "monthly rocket launches"}, headers=_auth(BOB))
    failed = _wait(client, refused.json()["id"])  # the CLI exits 3 on it: the job says so, and 422 for HTTP
    assert failed["status"] == "failed" and failed["exit_code"] == 3 and failed["http_status"] == 422, failed
    assert failed["error"] and failed["result"]["exit_code"] == 3 and Path(failed["proposal_dir"]).is_dir()


@pytest.mark.slow
def test_a_governed_proposal_waits_for_an_approver_named_in_the_policy(live):
    client, fake = live["client"], live["fake"]
    created = client.post("/api/v1/proposals", json={"request": "customers mart with lifetime value"},
                          headers=_auth(BOB))
    held = _wait(client, created.json()["id"])
    assert held["status"] == "awaiting_approval", held
    assert held["exit_code"] == 11 and held["http_status"] == 202
    assert held["approvals"][0]["approvers"] == ["@data-governance"]
    report = json.loads(Path(held["proposal_dir"], "report.json").read_text())
    assert report["status"] == "validated" and report["branch"] is None and "held until" in report["error"]
    branch = "dataeng-crew/customers-mart-with-lifetime-value"
    assert f"refs/heads/{branch}" not in fake.repos[REPO_NAME].refs  # validated, not published
    assert not git(live["repo"], "branch", "--list", branch)
    refused = client.post(f"/api/v1/proposals/{held['id']}/approve", headers=_auth(BOB))
    assert refused.status_code == 403 and refused.json()["exit_code"] == 12
    approved = client.post(f"/api/v1/proposals/{held['id']}/approve", json={"note": "masked, fine"},
                           headers=_auth(ALICE))
    assert approved.status_code == 202, approved.text
    job = _wait(client, held["id"], TERMINAL)
    assert job["status"] == "published" and job["decided_by"] == "alice as @data-governance", job
    assert f"refs/heads/{branch}" in fake.repos[REPO_NAME].refs
    audit = [json.loads(line) for line in (live["repo"] / ".dataeng-crew" / "audit.jsonl").read_text().splitlines()]
    decisions = [(a["who"], a["what"], a["args"].get("approver")) for a in audit if a["what"].startswith("approve")]
    assert ("serve:bob", "approve refused", None) in decisions
    assert ("serve:alice", "approve", "@data-governance") in decisions
    again = client.post(f"/api/v1/proposals/{held['id']}/reject", headers=_auth(ALICE))
    assert again.status_code == 422  # published: nothing left to reject


@pytest.mark.slow
def test_webhook_signature_commands_permissions_and_redelivery(live):
    client, fake = live["client"], live["fake"]
    fake.set_permission(REPO_NAME, "analyst", "write")
    fake.set_permission(REPO_NAME, "reader", "read")
    issue = fake.create_issue(REPO_NAME, "monthly numbers please")
    payload = _comment(issue, "analyst", "thanks!\n/dataeng-crew propose monthly_sales mart\n")
    assert _hook(client, "issue_comment", payload, secret="wrong-secret-0123456789").status_code == 401
    assert _hook(client, "issue_comment", payload, signature="").status_code == 401
    assert _hook(client, "issue_comment", payload, signature="sha1=abc").status_code == 401
    reader = _hook(client, "issue_comment", _comment(issue, "reader", "/dataeng-crew propose weekly_sales mart"))
    assert reader.status_code == 200 and reader.json()["status"].startswith("refused")
    delivery = str(uuid.uuid4())
    first = _hook(client, "issue_comment", payload, delivery)
    assert first.status_code == 202, first.text
    job_id = first.json()["status"].split(": ")[1]
    assert _hook(client, "issue_comment", payload, delivery).json()["status"] == "duplicate"
    job = _wait(client, job_id)
    assert job["status"] == "published" and job["source"] == "webhook" and job["submitted_by"] == "github:analyst"
    pr = job["result"]["pull_request"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not [c for c in fake.repos[REPO_NAME].issue_comments
                                               if c["number"] == issue]:
        time.sleep(0.1)
    replies = [c for c in fake.repos[REPO_NAME].issue_comments if c["number"] == issue]
    assert len(replies) == 1 and pr["url"] in replies[0]["body"] and f"#{pr['number']}" in replies[0]["body"]
    assert [j for j in client.get("/api/v1/proposals").json() if j["request"] == "monthly_sales mart"] == [job]
    perms = fake.calls("GET", r"/collaborators/(analyst|reader)/permission")
    assert {c.path.split("/")[-2] for c in perms} == {"analyst", "reader"}
    metrics = client.get("/metrics").text
    for result in ("bad_signature", "duplicate", "queued", "refused"):
        assert f'dataeng_crew_webhook_deliveries_total{{result="{result}"}}' in metrics
    # a review requesting changes on a PR that is not the tool's: no revision
    review = {"action": "submitted", "review": {"state": "changes_requested", "user": {"login": "analyst"}},
              "pull_request": {"number": 77, "head": {"ref": "feature/x"}}, "repository": {"full_name": REPO_NAME}}
    assert _hook(client, "pull_request_review", review).json()["status"] == "ignored: not a dataeng-crew pull request"


@pytest.mark.slow
def test_revisions_from_a_review_webhook_and_from_the_api(live):
    client, fake = live["client"], live["fake"]
    remote = fake.repos[REPO_NAME]
    daily = _published(live, "daily_sales mart")
    pr = daily["result"]["pull_request"]
    fake.set_permission(REPO_NAME, "analyst", "write")
    before = remote.refs[f"refs/heads/{pr['branch']}"]
    fake.add_review(REPO_NAME, pr["number"], "analyst", "CHANGES_REQUESTED", "Please rename net_sales to net_revenue.")
    review = {"action": "submitted", "review": {"state": "changes_requested", "user": {"login": "analyst"}},
              "pull_request": {"number": pr["number"], "head": {"ref": pr["branch"]}},
              "repository": {"full_name": REPO_NAME}}
    queued = _hook(client, "pull_request_review", review)
    assert queued.status_code == 202, queued.text
    job = _wait(client, queued.json()["status"].split(": ")[1])
    assert job["kind"] == "revise" and job["status"] == "revised", (job["error"], job["result"])
    assert remote.refs[f"refs/heads/{pr['branch']}"] != before  # one follow-up commit on the PR's branch
    assert "net_revenue" in remote.files_at(pr["branch"])[f"dbt_project/{daily['result']['models'][-1]['path']}"]
    monthly = _published(live, "monthly_sales mart")
    tip = git(live["repo"], "rev-parse", monthly["result"]["branch"])
    asked = client.post(f"/api/v1/proposals/{monthly['id']}/revise", json={"comment": "rename net_sales to net_revenue"},
                        headers=_auth(BOB))
    assert asked.status_code == 202, asked.text
    local = _wait(client, asked.json()["id"])
    assert local["status"] == "revised" and local["result"]["tip_before"] == tip, local
    assert git(live["repo"], "rev-parse", monthly["result"]["branch"]) == local["result"]["commit"]


@pytest.mark.slow
def test_the_status_page_renders_in_headless_chromium(live):
    client = live["client"]
    _published(live, "daily_sales mart")
    jobs = client.get("/api/v1/proposals").json()
    html = client.get("/").text
    assert "<script" not in html
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium not found (CI is set: .ci/run installs the Debian package `chromium`)")
        pytest.skip("chromium not found and CI unset: install the Debian package `chromium` to run this test")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "serve-status-page.png"
    shot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="serve-chromium-") as profile:
        flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]
        dom = subprocess.run([*flags, "--dump-dom", live["server"].url + "/"], capture_output=True, text=True,
                             timeout=120)
        subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1400,900", live["server"].url + "/"],
                       capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for job in jobs:
        assert f'id="job-{job["id"]}"' in dom.stdout and job["request"] in dom.stdout
    assert 'data-status="published"' in dom.stdout and "/pull/" in dom.stdout
    assert shot.is_file() and shot.stat().st_size > 5_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_no_secret_in_responses_logs_store_or_audit(live):
    service = live["service"]
    _published(live, "daily_sales mart")  # at least one proposal, whichever tests ran before in this process
    texts = list(live["responses"])
    state = live["repo"] / ".dataeng-crew"
    files = [p for p in state.rglob("*") if p.is_file()]
    assert service.store.path in files and state / "audit.jsonl" in files
    blobs = [p.read_bytes() for p in files] + [t.encode() for t in texts]
    for secret in SECRETS:
        assert not [b for b in blobs if secret.encode() in b], f"secret {secret[:6]}… leaked"
    assert not [c for c in live["fake"].requests if any(s in (c.body or "") for s in SECRETS[1:])]


# -------------------------------------------------------------------------------- stub runners


class Blocking:
    """A runner that waits (in small sleeps, so an interrupt lands) until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: list[str] = []

    def __call__(self, job, ctx) -> JobOutcome:  # noqa: ANN001
        self.started.append(job.id)
        ctx.progress("stub stage")
        while not self.release.is_set():
            time.sleep(0.01)
        return JobOutcome(status="validated", timings=[{"stage": "stub stage", "seconds": 0.01}])


def quick(job, ctx) -> JobOutcome:  # noqa: ANN001
    ctx.progress("stub stage")
    return JobOutcome(status="failed" if "fail" in job.request else "validated", exit_code=3 if "fail" in job.request
                      else None, error="stub failure" if "fail" in job.request else None,
                      timings=[{"stage": "stub stage", "seconds": 0.001}])


@pytest.fixture()
def stub_project(tmp_path, sample_warehouse):
    return make_git_project(tmp_path / "repo", sample_warehouse)


def test_queue_full_answers_429_with_the_cli_exit_code(stub_project):
    runner = Blocking()
    service = build_service(stub_project, config=_config(queue_size=2), runner=runner)
    server = ThreadedServer(create_app(service)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            ids = [client.post("/api/v1/proposals", json={"request": f"r{i}"}, headers=_auth(BOB)) for i in range(4)]
            deadline = time.monotonic() + 10
            while not runner.started and time.monotonic() < deadline:
                time.sleep(0.02)
            codes = [r.status_code for r in ids]
            assert codes[0] == 202 and codes.count(429) >= 1, codes
            full = next(r for r in ids if r.status_code == 429)
            assert full.json()["exit_code"] == 10 and full.headers["retry-after"]
            assert client.post("/api/v1/proposals", json={"request": ""}, headers=_auth(BOB)).status_code == 422
            assert client.get("/api/v1/proposals/nope").status_code == 404
            runner.release.set()
    finally:
        runner.release.set()
        server.stop()


def test_sigterm_drain_then_restart_resumes_queued_and_marks_running_interrupted(stub_project):
    runner = Blocking()
    service = build_service(stub_project, config=_config(), runner=runner)
    server = ThreadedServer(create_app(service)).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        ids = [client.post("/api/v1/proposals", json={"request": f"job {i}"}, headers=_auth(BOB)).json()["id"]
               for i in range(3)]
        deadline = time.monotonic() + 10
        while not runner.started and time.monotonic() < deadline:
            time.sleep(0.02)
    server.stop()  # as uvicorn does on SIGTERM: the lifespan drains the worker
    service.store.close()
    store = Store(stub_project.parent / ".dataeng-crew" / "serve.sqlite3")
    statuses = {i: store.get(i).status for i in ids}
    assert statuses == {ids[0]: "interrupted", ids[1]: "queued", ids[2]: "queued"}
    assert store.get(ids[0]).exit_code == 143
    # a killed service leaves a job "running": the next start marks it interrupted with what git says
    store.update(ids[1], status="running", started_at="2026-01-01T00:00:00.000+00:00")
    store.close()
    again = build_service(stub_project, config=_config(), runner=quick)
    server = ThreadedServer(create_app(again)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            crashed = client.get(f"/api/v1/proposals/{ids[1]}").json()
            assert crashed["status"] == "interrupted" and "nothing was published" in crashed["error"]
            assert _wait(client, ids[2], TERMINAL, 30)["status"] == "validated"
    finally:
        server.stop()


def test_load_200_status_requests_and_20_queued_jobs_all_end_in_a_known_state(stub_project):
    service = build_service(stub_project, config=_config(queue_size=20), runner=quick)
    server = ThreadedServer(create_app(service)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=64)) as client:
            ids = [client.post("/api/v1/proposals", json={"request": f"load {i}" + (" fail" if i % 5 == 0 else "")},
                               headers=_auth(BOB)) for i in range(20)]
            assert all(r.status_code in (202, 429) for r in ids)
            accepted = [r.json()["id"] for r in ids if r.status_code == 202]
            assert len(accepted) >= 19  # the worker takes jobs while they arrive

            def status(i: int) -> int:
                return client.get(f"/api/v1/proposals/{accepted[i % len(accepted)]}").status_code

            with ThreadPoolExecutor(max_workers=50) as pool:
                codes = list(pool.map(status, range(200)))
            assert codes == [200] * 200
            finals = [_wait(client, j, TERMINAL, 60) for j in accepted]
    finally:
        server.stop()
    assert {j["status"] for j in finals} <= {"validated", "failed"}
    assert all(j["exit_code"] in (None, 3) for j in finals)


# -------------------------------------------------------------------------------- the installed command


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_cli(project: Path, config: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "SERVE_TOKEN_BOB": BOB, "SERVE_HOOK": HOOK_SECRET}
    proc = subprocess.Popen([shutil.which("dataeng-crew") or "dataeng-crew", "serve", "--project", str(project),
                             "--config", str(config), "--port", str(port)], stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(log.read_text()[-3000:])


@pytest.mark.slow
def test_sigterm_to_dataeng_crew_serve_settles_the_running_proposal_and_keeps_the_queue(stub_project, tmp_path):
    import signal

    config = tmp_path / "serve.yml"
    config.write_text("tokens:\n  - {name: bob, token_env: SERVE_TOKEN_BOB}\nwebhook_secret_env: SERVE_HOOK\n"
                      "publish: local\n")
    port, log = _free_port(), tmp_path / "serve.log"
    proc = _start_cli(stub_project, config, port, log)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        first, second = (client.post("/api/v1/proposals", json={"request": r}, headers=_auth(BOB)).json()["id"]
                         for r in ("daily_sales mart", "monthly_sales mart"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(s["stage"] == "profile warehouse" for s in client.get(f"/api/v1/proposals/{first}").json()["stages"]):
                break
            time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0  # drained and stopped cleanly
    store = Store(stub_project.parent / ".dataeng-crew" / "serve.sqlite3")
    stopped = store.get(first)
    assert stopped.status == "interrupted" and stopped.exit_code == 143, (stopped.error, log.read_text()[-3000:])
    assert "nothing was published" in stopped.error and stopped.proposal_dir
    assert store.get(second).status == "queued"
    store.close()
    assert not git(stub_project.parent, "branch", "--list", "dataeng-crew/*")
    assert git(stub_project.parent, "status", "--porcelain") == ""
    proc = _start_cli(stub_project, config, port, log)  # the queued proposal resumes
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            done = _wait(client, second, TERMINAL, 300)
            assert done["status"] == "published" and done["result"]["branch"] == "dataeng-crew/monthly-sales-mart"
            assert client.get(f"/api/v1/proposals/{first}").json()["status"] == "interrupted"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    text = log.read_text()
    assert "serving" in text and not [s for s in SECRETS if s in text]


def test_a_job_that_finds_the_run_lock_taken_goes_back_to_the_queue(stub_project):
    calls: list[str] = []

    def busy_once(job, ctx) -> JobOutcome:  # noqa: ANN001 - a CLI run holds the lock the first time
        calls.append(job.id)
        if len(calls) == 1:
            return JobOutcome(status="failed", exit_code=10, error="another dataeng-crew run is working")
        return JobOutcome(status="validated")

    service = build_service(stub_project, config=_config(), runner=busy_once)
    server = ThreadedServer(create_app(service)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            job_id = client.post("/api/v1/proposals", json={"request": "r"}, headers=_auth(BOB)).json()["id"]
            job = _wait(client, job_id, TERMINAL, 30)
    finally:
        server.stop()
    assert job["status"] == "validated" and calls == [job_id, job_id]
