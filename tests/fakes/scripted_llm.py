"""A scripted ``crewai.BaseLLM``: replays realistic answers (ReAct text, JSON, bad ones, provider errors).

It subclasses the crew's real ``MeteredLLM`` (agents/llm.py), so retries, backoff (with an injected
clock: nothing sleeps) and call/token accounting run the production code; only ``_complete`` — the
network round trip — is replaced by the script. Answers are queued per role: the agent's role name
(``prompts/agents.yaml``) is found in the system prompt CrewAI builds.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import yaml
from pydantic import BaseModel, PrivateAttr

from dataeng_crew.agents.crew import PROMPTS
from dataeng_crew.agents.llm import estimate_tokens, llm_classes, messages_text

MeteredLLM = llm_classes()["MeteredLLM"]
ROLE_NAMES = {key: cfg["role"] for key, cfg in yaml.safe_load((PROMPTS / "agents.yaml").read_text()).items()}


class FakeHTTPError(Exception):
    """What an SDK raises on an HTTP error: ``status_code`` and ``response.headers``."""

    def __init__(self, status_code: int, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status_code} from the provider")
        self.status_code = status_code
        self.response = type("Response", (), {"status_code": status_code,
                                              "headers": {"retry-after": str(retry_after)} if retry_after else {}})()


def react(obj: BaseModel | dict | str, thought: str = "I checked the draft against the profile.") -> str:
    """A ReAct final answer holding the object as JSON."""
    body = obj.model_dump_json(indent=1) if isinstance(obj, BaseModel) else (
        obj if isinstance(obj, str) else json.dumps(obj))
    return f"Thought: {thought}\nFinal Answer: {body}"


def fenced(obj: BaseModel) -> str:
    """A final answer with the JSON in a markdown fence, and chatter around it."""
    return f"Thought: done.\nFinal Answer: Here is the result:\n```json\n{obj.model_dump_json(indent=2)}\n```\nHope it helps!"


Answer = str | Exception | Callable[[list[dict[str, Any]]], str]


class ScriptedLLM(MeteredLLM):
    """Replays ``script[role]`` answers in order; the last answer of a role repeats when it runs out.

    ``calls_by_role`` counts every attempt (including ones that raised), ``prompts`` keeps what was sent.
    """

    _script: dict[str, list[Answer]] = PrivateAttr(default_factory=dict)
    _calls: dict[str, int] = PrivateAttr(default_factory=dict)
    _prompts: list[tuple[str, str]] = PrivateAttr(default_factory=list)

    @classmethod
    def with_script(cls, script: dict[str, list[Answer]], model: str = "scripted") -> "ScriptedLLM":
        llm = cls(model=model, label=f"scripted/{model}", provider="openai")
        llm._script = {role: list(answers) for role, answers in script.items()}
        llm.retry_policy.sleep = lambda _s: None  # the injected clock: record, never wait
        return llm

    @property
    def calls_by_role(self) -> dict[str, int]:
        """Attempts per role so far."""
        return dict(self._calls)

    @property
    def prompts(self) -> list[tuple[str, str]]:
        """(role, prompt text) of every call."""
        return list(self._prompts)

    def _role_of(self, messages: list[dict[str, Any]]) -> str:
        text = str(messages[0].get("content", "")) if messages else ""
        for key, name in ROLE_NAMES.items():
            if f"You are {name}" in text:
                return key
        return "unknown"

    def _complete(self, messages: list[dict[str, Any]]) -> tuple[str, int, int]:
        role = self._role_of(messages)
        self._calls[role] = self._calls.get(role, 0) + 1
        self._prompts.append((role, messages_text(messages)))
        queue = self._script.get(role)
        if not queue:
            raise AssertionError(f"no scripted answer for role {role!r}")
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        text = answer(messages) if callable(answer) else answer
        return text, estimate_tokens(messages_text(messages)), estimate_tokens(text)


def good_answers(profile: Any, request: str, also_stage: tuple[str, ...] = ()) -> dict[str, BaseModel]:
    """What a good model answers for each task: the deterministic brain's contracts, serialized at test time.

    The code under test is the crew's prompting, parsing, guardrails, repair loop and the flow, not the rules.
    ``also_stage`` adds raw tables the plan stages (a scripted mart that reads them).
    """
    from pathlib import Path

    from dataeng_crew.agents import governance
    from dataeng_crew.agents.brains import DeterministicBrain
    from dataeng_crew.agents.crew import GovernanceOutput, ModelingOutput, QualityOutput, TransformOutput

    d = DeterministicBrain()
    plan = d.plan(request, profile)
    plan = plan.model_copy(update={"source_tables": [*plan.source_tables, *also_stage]})
    sources, staging = d.model(plan, profile)
    marts = d.transform(plan, profile, staging)
    s2, m2, suites = d.test(plan, sources, staging + marts, profile)
    m3, policies = d.govern(m2, profile, governance.load_policy(Path("/nonexistent")))
    return {"plan": plan, "model": ModelingOutput(sources=sources, models=staging),
            "transform": TransformOutput(models=marts),
            "test": QualityOutput(sources=s2, models=m2, suites=suites),
            "govern": GovernanceOutput(models=m3, policies=policies)}


def good_script(answers: dict[str, BaseModel], **override: list[Answer]) -> dict[str, list[Answer]]:
    """One good ReAct answer per role (quality's in a markdown fence), with per-role overrides."""
    script: dict[str, list[Answer]] = {
        "planner": [react(answers["plan"])], "modeler": [react(answers["model"])],
        "transformer": [react(answers["transform"])], "quality": [fenced(answers["test"])],
        "governance": [react(answers["govern"])]}
    script.update(override)
    return script
