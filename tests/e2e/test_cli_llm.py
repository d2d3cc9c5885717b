"""The installed CLI's LLM options: one notice without an LLM, clear errors for a missing key or an
unreachable provider (never a hang), and nothing published then."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git, make_git_project

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("dataeng-crew"))


def run(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DATAENG_CREW_LLM", "DATAENG_CREW_LLM_BASE_URL"}}
    clean.update({"DATAENG_CREW_CONFIG": str(project / "no-config.yml"), **env})
    return subprocess.run([CLI, "propose", *args, "--project", str(project)], capture_output=True, text=True,
                          env=clean, timeout=120)


@pytest.fixture(scope="module")
def project(tmp_path_factory, sample_warehouse) -> Path:
    return make_git_project(tmp_path_factory.mktemp("llm-cli") / "repo", sample_warehouse)


def test_no_key_and_no_llm_says_so_once_and_runs_the_deterministic_brain(project):
    done = run(project, "weather forecast for tomorrow")  # profiled, planned by rules, refused (exit 3)
    assert done.returncode == 3, done.stderr
    assert done.stderr.count("no LLM configured") == 1


def test_llm_without_its_key_is_a_configuration_error(project):
    done = run(project, "daily_sales mart", "--llm", "openai/gpt-4o")
    assert done.returncode == 2 and "OPENAI_API_KEY" in done.stderr


def test_unreachable_provider_fails_with_a_clear_error_and_publishes_nothing(project):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = run(project, "daily_sales mart", "--llm", "openai/gpt-4o", "--llm-base-url", f"http://127.0.0.1:{port}/v1",
               "--on-llm-error", "fail", "--json", OPENAI_API_KEY="sk-e2e-not-a-real-key-0000",
               DATAENG_CREW_LLM_CONNECT_TIMEOUT="1")
    assert done.returncode == 8, done.stderr
    assert "LLM provider compatible/gpt-4o failed after 3 attempt(s): APIConnectionError" in done.stderr
    assert "sk-e2e-not-a-real-key" not in done.stderr + done.stdout
    assert git(project.parent, "branch", "--list", "dataeng-crew/*") == ""


def test_propose_through_the_crew_over_http_publishes_and_accounts(tmp_path, sample_warehouse, sample_profile):
    """The installed CLI, the real openai SDK and the crew against a local OpenAI-compatible API that answers
    like a good model (and throttles once): published branch, usage per role in --json, key in no file."""
    import json

    from tests.fakes.fake_llm_server import FakeLlmServer
    from tests.fakes.scripted_llm import good_answers, good_script

    project = make_git_project(tmp_path / "repo", sample_warehouse)
    script = good_script(good_answers(sample_profile, "daily_sales mart"))
    script["planner"] = [(429, 0), *script["planner"]]
    key = "sk-e2e-crew-key-0123456789"
    with FakeLlmServer(script) as server:
        done = run(project, "daily_sales mart", "--llm", "openai/gpt-4o", "--llm-base-url", server.url + "/v1",
                   "--json", OPENAI_API_KEY=key)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "published" and data["branch"] == "dataeng-crew/daily-sales-mart"
    assert data["brain"] == "crew (compatible/gpt-4o)" and data["build"]["success"]
    usage = {u["role"]: u for u in data["llm_usage"]}
    assert server.calls == {"planner": 2, "modeler": 1, "transformer": 1, "quality": 1, "governance": 1}
    assert (usage["planner"]["calls"], usage["planner"]["retries"]) == (2, 1)
    assert all(u["calls"] == 1 and u["tokens_in"] > 0 and u["fallback"] is None
               for r, u in usage.items() if r != "planner")
    written = [p for p in (project.parent / ".dataeng-crew").rglob("*") if p.is_file() and p.suffix != ".duckdb"]
    assert written and not any(key in p.read_text(errors="ignore") for p in written)
    assert key not in git(project.parent, "log", "-p", data["branch"])
