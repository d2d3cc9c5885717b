"""The crew's parsing and guardrails, provider retries and the brain selection, with the scripted LLM."""

from __future__ import annotations

import json
import socket

import pytest

from dataeng_crew.agents.brains import DeterministicBrain
from dataeng_crew.agents.crew import CrewBrain, extract_json, parse_contract
from dataeng_crew.agents.llm import ProviderError, RetryPolicy, resolve_settings, select_brain
from dataeng_crew.contracts import Plan
from tests.fakes.scripted_llm import FakeHTTPError, ScriptedLLM, fenced, react

REQUEST = "daily_sales mart"


@pytest.fixture()
def plan(sample_profile) -> Plan:
    return DeterministicBrain().plan(REQUEST, sample_profile)


def brain(llm, tmp_path, **kw) -> CrewBrain:
    return CrewBrain(llm, storage_dir=tmp_path / "crewai", **kw)


def test_fenced_truncated_and_extra_keys_go_back_until_valid(tmp_path, sample_profile, plan):
    truncated = react(plan)[:200]
    extra = react({**json.loads(plan.model_dump_json()), "drop_table": "orders"})
    improved = plan.model_copy(update={"interpretations": [*plan.interpretations, "Days without orders show 0."]})
    llm = ScriptedLLM.with_script({"planner": [truncated, extra, fenced(improved)]})
    out = brain(llm, tmp_path).plan(REQUEST, sample_profile)
    assert out == improved
    assert llm.calls_by_role == {"planner": 3}
    retries = [p for _role, p in llm.prompts]
    assert "invalid or truncated" in retries[1] and "drop_table: unknown key" in retries[2]
    first = retries[0]  # the prompt: agents.yaml role, tasks.yaml task, fenced schema and the deterministic draft
    assert "You are Analytics planner" in first and "<<untrusted data: warehouse schema" in first
    assert plan.model_dump_json() in first


def test_guardrail_exhausted_falls_back_and_says_why(tmp_path, sample_profile, plan):
    llm = ScriptedLLM.with_script({"planner": ["Thought: hmm\nFinal Answer: I would build a mart."]})
    crew = brain(llm, tmp_path)
    assert crew.plan(REQUEST, sample_profile) == plan  # the deterministic draft
    usage = crew.usage_report()[0]
    assert usage.calls == 3 and usage.fallback.startswith("no valid answer")


def test_unknown_source_table_is_refused_by_the_role_check(tmp_path, sample_profile, plan):
    bad = plan.model_copy(update={"source_tables": ["orders", "invoices"]})
    llm = ScriptedLLM.with_script({"planner": [react(bad), react(plan)]})
    assert brain(llm, tmp_path).plan(REQUEST, sample_profile) == plan
    assert "'invoices' is not in the warehouse" in llm.prompts[1][1]
    assert llm.calls_by_role == {"planner": 2}


def test_provider_429_with_retry_after_then_success(tmp_path, sample_profile, plan):
    llm = ScriptedLLM.with_script({"planner": [FakeHTTPError(429, retry_after=3), FakeHTTPError(503),
                                               react(plan)]})
    crew = brain(llm, tmp_path)
    assert crew.plan(REQUEST, sample_profile) == plan
    assert llm.calls_by_role == {"planner": 3}
    assert llm.retry_policy.slept[0] == 3.0 and 0 < llm.retry_policy.slept[1] <= llm.retry_policy.max_delay
    usage = crew.usage_report()[0]
    assert usage.calls == 3 and usage.retries == 2 and usage.fallback is None


def test_backoff_is_capped_and_non_retryable_errors_stop_at_once(tmp_path, sample_profile, plan):
    assert RetryPolicy(max_delay=8).delay(1, retry_after=600) == 8
    llm = ScriptedLLM.with_script({"planner": [FakeHTTPError(401)]})
    crew = brain(llm, tmp_path, on_error="fail")
    with pytest.raises(ProviderError, match="HTTP 401"):
        crew.plan(REQUEST, sample_profile)
    assert llm.calls_by_role == {"planner": 1} and llm.retry_policy.slept == []


def test_no_key_and_no_llm_runs_the_deterministic_brain_with_one_notice(monkeypatch, tmp_path):
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "DATAENG_CREW_LLM", "DATAENG_CREW_LLM_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATAENG_CREW_CONFIG", str(tmp_path / "missing.yml"))
    notices: list[str] = []
    chosen = select_brain(notice=notices.append)
    assert isinstance(chosen, DeterministicBrain)
    assert len(notices) == 1 and "no LLM configured" in notices[0]


def test_settings_from_flag_env_and_config_file(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("llm: ollama/llama3.1\non_llm_error: fail\n")
    from dataeng_crew.agents.llm import load_config

    s, _ = resolve_settings(None, env={}, config=load_config(config))
    assert (s.provider, s.model, s.base_url, s.on_error) == ("ollama", "llama3.1", "http://localhost:11434/v1", "fail")
    s, _ = resolve_settings(None, env={"DATAENG_CREW_LLM": "anthropic/claude-x", "ANTHROPIC_API_KEY": "k"}, config={})
    assert (s.provider, s.model) == ("anthropic", "claude-x")
    s, _ = resolve_settings(None, env={"OPENAI_API_KEY": "sk-test"}, config={})
    assert s.label == "openai/gpt-4o" and "sk-test" not in repr(s)
    s, _ = resolve_settings("qwen2", base_url="http://127.0.0.1:8000/v1", env={}, config={})
    assert (s.provider, s.base_url) == ("compatible", "http://127.0.0.1:8000/v1")
    assert resolve_settings("none", env={"OPENAI_API_KEY": "x"}, config={})[0] is None
    from dataeng_crew.errors import ConfigError

    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        resolve_settings("openai/gpt-4o", env={}, config={})


def test_unreachable_provider_fails_fast_with_a_clear_error(tmp_path, sample_profile, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    crew = select_brain("openai/gpt-4o", f"http://127.0.0.1:{port}/v1", "fail", connect_timeout=0.5)
    crew.llm.retry_policy.sleep = lambda _s: None
    with pytest.raises(ProviderError, match=r"failed after 3 attempt\(s\): APIConnectionError"):
        crew.plan(REQUEST, sample_profile)
    assert crew.llm.meter.calls == 3


def test_extract_json_variants():
    assert extract_json('Thought: x\nFinal Answer: {"a": 1}') == '{"a": 1}'
    assert extract_json('```json\n{"a": {"b": 2}}\n```') == '{"a": {"b": 2}}'
    with pytest.raises(ValueError, match="no JSON"):
        extract_json("no json here")
    with pytest.raises(ValueError, match="truncated"):
        parse_contract('{"request": "x", "subj', Plan)
