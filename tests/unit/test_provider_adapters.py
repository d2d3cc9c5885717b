"""The real provider adapters (openai and anthropic SDKs) against a local fake API: answers, token usage,
429 with Retry-After through the SDK's own error classes, and no key in what is recorded."""

from __future__ import annotations

import pytest

from dataeng_crew.agents.llm import LlmSettings, ProviderError, make_llm

MESSAGES = [{"role": "system", "content": "You are Analytics planner. Answer in JSON."},
            {"role": "user", "content": "plan it"}]


@pytest.mark.parametrize("provider", ["compatible", "anthropic"])
def test_adapter_answers_counts_tokens_and_retries_429(provider):
    from tests.fakes.fake_llm_server import FakeLlmServer

    with FakeLlmServer({"planner": [(429, 2), (503, None), 'Final Answer: {"ok": true}']}) as server:
        base = server.url + ("/v1" if provider == "compatible" else "")
        llm = make_llm(LlmSettings(provider, "m-1", base, "sk-adapter-test-key-123", connect_timeout=2))  # type: ignore[arg-type]
        slept: list[float] = []
        llm.retry_policy.sleep = slept.append
        assert llm.call(MESSAGES) == 'Final Answer: {"ok": true}'
    assert server.calls == {"planner": 3}
    assert slept[0] == 2.0 and len(slept) == 2
    assert (llm.meter.calls, llm.meter.retries) == (3, 2)
    assert llm.meter.tokens_in > 0 and llm.meter.tokens_out > 0
    assert any("sk-adapter-test-key-123" in a for a in server.auth)  # the key went to the provider only


def test_adapter_gives_up_after_bounded_attempts_with_a_clear_error():
    from tests.fakes.fake_llm_server import FakeLlmServer

    with FakeLlmServer({"planner": [(500, None)]}) as server:
        llm = make_llm(LlmSettings("compatible", "m-1", server.url + "/v1", "k", connect_timeout=2))
        llm.retry_policy.sleep = lambda _s: None
        with pytest.raises(ProviderError, match=r"failed after 3 attempt\(s\): HTTP 500"):
            llm.call(MESSAGES)
    assert server.calls == {"planner": 3}
