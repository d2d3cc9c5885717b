"""Units of `dataeng-crew serve` (issue 25): signatures, the exit-code table, the store, commands, config."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys

import pytest

from dataeng_crew import errors
from dataeng_crew.errors import DataengCrewError
from dataeng_crew.service.config import ServeConfig, load_config
from dataeng_crew.service.statuses import EXIT_TO_HTTP, NotFound, Unauthorized, error_body, http_status, status_for
from dataeng_crew.service.store import Store
from dataeng_crew.service.webhook import Command, parse_event, verify_signature

SECRET = "whsec-unit-0123456789"


def _sig(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_signature_verifies_only_the_exact_hmac_sha256():
    body = b'{"action":"created"}'
    assert verify_signature(SECRET, body, _sig(body))
    assert not verify_signature(SECRET, body + b" ", _sig(body))
    assert not verify_signature(SECRET, body, _sig(body, "other-secret-0123456"))
    assert not verify_signature(SECRET, body, _sig(body).replace("sha256=", "sha1="))
    assert not verify_signature(SECRET, body, None) and not verify_signature(SECRET, body, "")
    assert not verify_signature(None, body, _sig(body)) and not verify_signature("", body, _sig(body))


def test_signature_uses_a_constant_time_comparison():
    import inspect

    from dataeng_crew.service import webhook

    assert "hmac.compare_digest" in inspect.getsource(webhook.verify_signature)


def test_every_error_class_has_an_http_status_in_the_one_table():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, (DataengCrewError,
                                                                                           KeyboardInterrupt))]
    for cls in classes:
        code = getattr(cls, "exit_code", 130)
        assert code in EXIT_TO_HTTP, f"{cls.__name__} (exit {code}) has no HTTP status"
    assert http_status(0) == 200 and http_status(None) == 200 and http_status(99) == 500
    assert http_status(errors.BusyError.exit_code) == 429 and http_status(errors.ConfigError.exit_code) == 400
    assert http_status(errors.BuildError.exit_code) == 422 and http_status(errors.PublishError.exit_code) == 502
    assert http_status(errors.AccessDenied.exit_code) == 403 and http_status(errors.ApprovalPending.exit_code) == 202
    assert status_for(Unauthorized("x")) == 401 and status_for(NotFound("x")) == 404
    assert status_for(errors.RequestError("x")) == 422
    assert error_body(errors.BuildError("dbt failed")) == {"status": "failed", "error": "dbt failed",
                                                           "error_type": "BuildError", "exit_code": 6}


def test_store_queue_limit_order_updates_and_deliveries(tmp_path):
    store = Store(tmp_path / "s.sqlite3")
    a = store.add("propose", "a", {"publish": "none"}, "api:bob", "api", limit=2)
    b = store.add("propose", "b", {}, "api:bob", "api", {"repo": "o/r", "number": 5}, limit=2)
    assert a and b and store.add("propose", "c", {}, "api:bob", "api", limit=2) is None
    assert store.count("queued") == 2
    running = store.next_queued()
    assert running.id == a.id and running.status == "running" and running.options == {"publish": "none"}
    store.add_stage(a.id, {"stage": "sandbox", "started_at": "t"})
    store.update(a.id, status="published", result={"branch": "x"}, stages=[{"stage": "sandbox", "seconds": 1.5}])
    done = store.get(a.id)
    assert done.result == {"branch": "x"} and done.stages == [{"stage": "sandbox", "seconds": 1.5}]
    assert store.get(b.id).reply_to == {"repo": "o/r", "number": 5}
    assert [j.id for j in store.list()] == [b.id, a.id] and store.get("missing") is None
    assert store.first_delivery("d-1", "issue_comment") and not store.first_delivery("d-1", "issue_comment")
    store.close()
    reopened = Store(tmp_path / "s.sqlite3")  # the file is the state: nothing lost on a restart
    assert reopened.get(a.id).status == "published" and not reopened.first_delivery("d-1", "issue_comment")


def test_commands_from_comments_and_reviews():
    repo = {"full_name": "acme/shop"}
    comment = {"action": "created", "issue": {"number": 3}, "repository": repo,
               "comment": {"body": "hi\n/dataeng-crew propose  monthly revenue by region \nthanks",
                           "user": {"login": "ann"}}}
    assert parse_event("issue_comment", comment) == Command("propose", "ann", "acme/shop", 3, "monthly revenue by region")
    revise = {**comment, "issue": {"number": 4, "pull_request": {}},
              "comment": {"body": "/dataeng-crew revise", "user": {"login": "ann"}}}
    assert parse_event("issue_comment", revise) == Command("revise", "ann", "acme/shop", 4, "", is_pull=True)
    review = {"action": "submitted", "repository": repo, "review": {"state": "changes_requested", "user": {"login": "r"}},
              "pull_request": {"number": 9, "head": {"ref": "dataeng-crew/x"}}}
    assert parse_event("pull_request_review", review).head == "dataeng-crew/x"
    assert parse_event("pull_request_review", {**review, "review": {"state": "approved"}}).startswith("ignored")
    assert parse_event("issue_comment", {**comment, "action": "edited"}).startswith("ignored")
    empty = {**comment, "comment": {"body": "/dataeng-crew propose", "user": {"login": "ann"}}}
    assert parse_event("issue_comment", empty).startswith("ignored")
    assert parse_event("ping", {}) == "pong" and parse_event("push", {}).startswith("ignored")


def test_config_tokens_from_env_and_constant_time_lookup(tmp_path, monkeypatch):
    monkeypatch.setenv("SERVE_TOKEN_CI", "ci-token-from-env-0123456789")
    monkeypatch.setenv("SERVE_HOOK", "hook-secret-from-env-0123")
    (tmp_path / "serve.yml").write_text("tokens:\n  - {name: ci, token_env: SERVE_TOKEN_CI, identities: ['@ops']}\n"
                                        "webhook_secret_env: SERVE_HOOK\npublish: local\n")
    config = load_config(None, tmp_path)
    assert config.client("ci-token-from-env-0123456789").name == "ci"
    assert config.client("ci-token-from-env-012345678") is None and config.client(None) is None
    assert config.webhook_secret.get_secret_value() == "hook-secret-from-env-0123"
    assert "ci-token-from-env" not in repr(config) and "hook-secret" not in config.model_dump_json()
    assert load_config(None, tmp_path / "none").tokens == []
    (tmp_path / "weak.yml").write_text("tokens: [{name: weak, token: short-secret}]\n")
    with pytest.raises(errors.ConfigError, match="at least 16") as refused:
        load_config(tmp_path / "weak.yml", tmp_path)
    assert "short-secret" not in str(refused.value)  # the message names the entry, never the secret
    assert ServeConfig().client("anything-at-all-0123") is None
    (tmp_path / "bad.yml").write_text("tokens: [unclosed\n")
    with pytest.raises(errors.ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yml", tmp_path)


def test_the_propose_path_never_imports_the_service_libraries():
    code = ("import sys\nfrom dataeng_crew import cli, flow, revise\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'prometheus_client', 'starlette', "
            "'dataeng_crew.service.app') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr[-2000:]
    assert "serve" in done.stdout


def _sleepy(job, ctx):  # noqa: ANN001, ANN202 - a job that waits to be stopped (runs in the child process)
    import time

    ctx.progress(f"started {job.request}")
    time.sleep(60)


def test_a_job_runs_in_its_own_process_and_sigterm_stops_it(tmp_path):
    import threading
    import time

    from dataeng_crew.service.jobs import JobContext
    from dataeng_crew.service.process import ProcessRunner

    store = Store(tmp_path / "s.sqlite3")
    job = store.add("propose", "slow one", {}, "api:bob", "api")
    stages: list[str] = []
    runner = ProcessRunner(_sleepy)
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(runner(job, JobContext(tmp_path, ServeConfig(),
                                                                                   stages.append))))
    thread.start()
    deadline = time.monotonic() + 60
    while not stages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stages == ["started slow one"]
    assert runner.interrupt()
    thread.join(30)
    assert outcome and outcome[0].status == "interrupted" and outcome[0].exit_code == 143
    assert not runner.interrupt()  # nothing runs any more
