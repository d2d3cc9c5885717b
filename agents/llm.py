"""LLM providers for the crew: choice, bounded retries, accounting, and the brain selection.

``--llm openai/<model>``, ``anthropic/<model>``, ``ollama/<model>`` (OpenAI-compatible at
``http://localhost:11434/v1``), any OpenAI-compatible server via ``--llm-base-url``, or ``none``.
Defaults come from ``DATAENG_CREW_LLM`` / ``DATAENG_CREW_LLM_BASE_URL``, then the config file
(``$DATAENG_CREW_CONFIG`` or ``~/.config/dataeng-crew/config.yml`` with ``llm:``, ``llm_base_url:``,
``on_llm_error:``, ``max_repair_rounds:``), then ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``.

This module does not import crewai at import time (``dataeng-crew --help`` stays fast); the
provider classes, which subclass ``crewai.BaseLLM``, are built by :func:`llm_classes` on demand.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from dataeng_crew.errors import ConfigError, DataengCrewError

OLLAMA_BASE_URL = "http://localhost:11434/v1"
DEFAULT_MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"}
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
CONFIG_ENV = "DATAENG_CREW_CONFIG"
DEFAULT_CONFIG = Path("~/.config/dataeng-crew/config.yml")
SECRET_TEXT = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|gh[pousr]_[A-Za-z0-9]{8,}|github_pat_[A-Za-z0-9_]{8,}|"
                         r"xox[abprs]-[A-Za-z0-9\-]{8,}|AKIA[0-9A-Z]{16}|(?i:bearer)\s+[A-Za-z0-9._\-]{8,}|"
                         r"(?i:api[_-]?key|token|password|passwd|secret)\s*[=:]\s*\S+|"
                         r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@))")  # the user:password of a URL


class ProviderError(DataengCrewError):
    """The LLM provider could not answer (network down, timeouts, 429/5xx after bounded retries, auth)."""

    exit_code = 8


def redact(text: str, limit: int = 1500) -> str:
    """``text`` with anything that looks like a key or token removed, capped at ``limit`` characters."""
    cleaned = SECRET_TEXT.sub("[redacted]", text)
    for env in (*KEY_ENV.values(), "GITHUB_TOKEN"):
        value = os.environ.get(env)
        if value and len(value) >= 6:
            cleaned = cleaned.replace(value, "[redacted]")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 20] + " …[trimmed]"


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class LlmSettings:
    """Which provider and model the crew talks to, and how patiently."""

    provider: Literal["openai", "anthropic", "ollama", "compatible"]
    model: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    max_attempts: int = 3
    on_error: Literal["fallback", "fail"] = "fallback"

    @property
    def label(self) -> str:
        """``provider/model`` for reports (never the key)."""
        return f"{self.provider}/{self.model}"


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The user's config file (``$DATAENG_CREW_CONFIG`` or ``~/.config/dataeng-crew/config.yml``), or ``{}``.

    Raises:
        ConfigError: When the file exists but is not a YAML mapping.
    """
    path = path or Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser()
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping like `llm: openai/gpt-4o`")
    return data


def resolve_settings(llm: str | None, base_url: str | None = None, on_error: str | None = None,
                     env: dict[str, str] | None = None, config: dict[str, Any] | None = None,
                     connect_timeout: float | None = None) -> tuple[LlmSettings | None, str | None]:
    """Decide the provider from the flag, then env, then the config file, then whichever key is set.

    Args:
        llm: ``--llm`` (``openai/<model>``, ``anthropic/<model>``, ``ollama/<model>``, ``<model>`` with a
            base URL, or ``none``).
        base_url: ``--llm-base-url`` for any OpenAI-compatible server.
        on_error: ``fallback`` (deterministic brain for the role) or ``fail``.
        env: Environment (default ``os.environ``).
        config: Parsed config file (default :func:`load_config`).
        connect_timeout: Seconds to wait for a TCP connection (default 5; env ``DATAENG_CREW_LLM_CONNECT_TIMEOUT``).

    Returns:
        (settings, notice): settings None means the deterministic brain; notice is what to tell the user once.

    Raises:
        ConfigError: On an unknown provider or a provider without its key.
    """
    env = dict(os.environ) if env is None else env
    config = load_config() if config is None else config
    choice = llm or env.get("DATAENG_CREW_LLM") or config.get("llm")
    base_url = base_url or env.get("DATAENG_CREW_LLM_BASE_URL") or config.get("llm_base_url")
    on_error = on_error or config.get("on_llm_error") or "fallback"
    if on_error not in ("fallback", "fail"):
        raise ConfigError(f"on_llm_error must be fallback or fail, got {on_error!r}")
    timeout = float(connect_timeout or env.get("DATAENG_CREW_LLM_CONNECT_TIMEOUT") or config.get("connect_timeout") or 5.0)
    common = {"connect_timeout": timeout, "on_error": on_error}
    if choice is None:
        for provider in ("openai", "anthropic"):
            if env.get(KEY_ENV[provider]):
                return LlmSettings(provider, DEFAULT_MODELS[provider], base_url if provider == "openai" else None,
                                   env[KEY_ENV[provider]], **common), None  # type: ignore[arg-type]
        return None, ("no LLM configured (no --llm, DATAENG_CREW_LLM, config file or OPENAI_API_KEY/"
                      "ANTHROPIC_API_KEY): running the deterministic brain (profiling + rules)")
    choice = str(choice).strip()
    if choice.lower() in {"none", "off", "deterministic"}:
        return None, "--llm none: running the deterministic brain (profiling + rules)"
    provider, _, model = choice.partition("/")
    if not model:  # a bare model name: OpenAI-compatible server when a base URL is given
        provider, model = ("compatible" if base_url else "openai"), provider
    provider = provider.lower()
    if provider == "openai":
        key = env.get(KEY_ENV["openai"])
        if not key and not base_url:
            raise ConfigError("--llm openai/... needs OPENAI_API_KEY (or --llm-base-url for a compatible server)")
        return LlmSettings("openai" if not base_url else "compatible", model, base_url, key, **common), None  # type: ignore[arg-type]
    if provider == "anthropic":
        key = env.get(KEY_ENV["anthropic"])
        if not key:
            raise ConfigError("--llm anthropic/... needs ANTHROPIC_API_KEY")
        return LlmSettings("anthropic", model, base_url, key, **common), None  # type: ignore[arg-type]
    if provider == "ollama":
        return LlmSettings("ollama", model, base_url or OLLAMA_BASE_URL, "ollama", **common), None  # type: ignore[arg-type]
    if provider == "compatible" or base_url:
        return LlmSettings("compatible", f"{provider}/{model}" if provider != "compatible" else model, base_url,
                           env.get("OPENAI_API_KEY") or "none", **common), None  # type: ignore[arg-type]
    raise ConfigError(f"unknown LLM provider {provider!r}: use openai/<model>, anthropic/<model>, "
                      "ollama/<model>, <model> with --llm-base-url, or none")


# --------------------------------------------------------------------------- retries and accounting


@dataclass
class RetryPolicy:
    """Bounded retries with capped exponential backoff; ``sleep`` is injectable so tests never wait."""

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], None] = time.sleep
    slept: list[float] = field(default_factory=list)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry ``attempt`` (1-based): Retry-After when given, always capped."""
        wanted = retry_after if retry_after is not None else self.base_delay * 2 ** (attempt - 1) * (
            1 + 0.2 * random.random())
        return max(0.0, min(wanted, self.max_delay))


def classify(exc: BaseException) -> tuple[bool, float | None, str]:
    """(retryable, retry-after seconds, short reason) for a provider SDK exception."""
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    if status is None:
        status = getattr(response, "status_code", None)
    retry_after = None
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None) or {}
    try:
        raw = headers.get("retry-after") or headers.get("Retry-After")
        retry_after = float(raw) if raw is not None else None
    except (TypeError, ValueError, AttributeError):
        retry_after = None
    name = type(exc).__name__
    if isinstance(status, int):
        return status in {408, 409, 429} or status >= 500, retry_after, f"HTTP {status} ({name})"
    if isinstance(exc, (TimeoutError, ConnectionError)) or re.search(r"Timeout|Connection", name):
        return True, None, f"{name}: {redact(str(exc), 200)}"
    return False, None, f"{name}: {redact(str(exc), 200)}"


@dataclass
class Meter:
    """Calls, tokens and retries of one LLM, cumulative; the crew takes deltas per role."""

    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    retries: int = 0

    def snapshot(self) -> tuple[int, int, int, int]:
        """The counters as a tuple, for deltas."""
        return self.calls, self.tokens_in, self.tokens_out, self.retries


def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters a token) when a provider reports none."""
    return max(1, len(text) // 4)


def messages_text(messages: Any) -> str:
    """All message contents as one string (for token estimates)."""
    if isinstance(messages, str):
        return messages
    return "\n".join(str(m.get("content", "")) for m in messages or [])


def call_with_retries(complete: Callable[[], tuple[str, int, int]], policy: RetryPolicy, meter: Meter,
                      label: str) -> str:
    """Run one completion with bounded retries; count calls, tokens and retries.

    Raises:
        ProviderError: After the last attempt, or at once on a non-retryable error (401, 400...). Raised
            outside the ``except`` so CrewAI's own rate-limit retry does not see the SDK error and wait again.
    """
    reason = "no attempt"
    for attempt in range(1, policy.max_attempts + 1):
        meter.calls += 1
        try:
            text, tokens_in, tokens_out = complete()
        except Exception as exc:  # noqa: BLE001 - every SDK error is classified below
            retryable, retry_after, reason = classify(exc)
            if not retryable or attempt == policy.max_attempts:
                break
            meter.retries += 1
            wait = policy.delay(attempt, retry_after)
            policy.slept.append(wait)
            policy.sleep(wait)
            continue
        meter.tokens_in += tokens_in
        meter.tokens_out += tokens_out
        return text
    raise ProviderError(f"LLM provider {label} failed after {attempt} attempt(s): {reason}")


# --------------------------------------------------------------------------- crewai.BaseLLM adapters

_CLASSES: dict[str, type] = {}
OFFLINE_ENV = {"CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true", "CREWAI_TRACING_ENABLED": "false"}


def offline_environment(storage_dir: Path | None = None) -> None:
    """Telemetry and tracing off; CrewAI's storage in ``storage_dir`` (default: a temp dir, never ``$HOME``).

    Call before importing crewai: it picks its storage folder at import (an absolute
    ``CREWAI_STORAGE_DIR`` is used as is).
    """
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    if storage_dir is not None:
        storage_dir.mkdir(parents=True, exist_ok=True)
        os.environ["CREWAI_STORAGE_DIR"] = str(storage_dir.resolve())
    elif not os.path.isabs(os.environ.get("CREWAI_STORAGE_DIR", "")):
        os.environ["CREWAI_STORAGE_DIR"] = temp_storage()


def temp_storage() -> str:
    """A temp folder for CrewAI's storage, removed when the process exits."""
    import atexit
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="dataeng-crew-crewai-")
    atexit.register(shutil.rmtree, path, True)
    return path


def llm_classes() -> dict[str, type]:
    """The ``crewai.BaseLLM`` subclasses (built on first use: importing crewai costs ~2.5 s)."""
    if _CLASSES:
        return _CLASSES
    offline_environment()
    from crewai import BaseLLM
    from pydantic import PrivateAttr

    class MeteredLLM(BaseLLM):
        """A BaseLLM whose ``call`` retries (bounded, injectable clock) and counts calls and tokens.

        Subclasses implement ``_complete(messages) -> (text, tokens_in, tokens_out)``.
        """

        label: str = ""
        _meter: Meter = PrivateAttr(default_factory=Meter)
        _policy: RetryPolicy = PrivateAttr(default_factory=RetryPolicy)

        @property
        def meter(self) -> Meter:
            """Calls, tokens and retries so far."""
            return self._meter

        @property
        def retry_policy(self) -> RetryPolicy:
            """The retry policy (set ``retry_policy.sleep`` in tests)."""
            return self._policy

        def call(self, messages: Any, tools: Any = None, callbacks: Any = None, available_functions: Any = None,
                 from_task: Any = None, from_agent: Any = None, response_model: Any = None) -> str:
            """One completion (text), with retries; see :func:`call_with_retries`."""
            if isinstance(messages, str):
                messages = [{"role": "user", "content": messages}]
            text = call_with_retries(lambda: self._complete(messages), self._policy, self._meter,
                                     self.label or self.model)
            return self._apply_stop_words(text)

        def _complete(self, messages: list[dict[str, Any]]) -> tuple[str, int, int]:
            raise NotImplementedError

        def supports_function_calling(self) -> bool:
            """The crew uses ReAct text, the same for every provider."""
            return False

        def supports_stop_words(self) -> bool:
            """Stop words are applied locally after the call."""
            return True

        def get_context_window_size(self) -> int:
            """A conservative window that fits every supported model."""
            return 120_000

        def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
            """Our own estimate (4 characters a token), without CrewAI's warning on every call."""
            return estimate_tokens(messages_text(messages))

    class OpenAICompatibleLLM(MeteredLLM):
        """OpenAI, Ollama and any OpenAI-compatible server, through the ``openai`` SDK (its retries off)."""

        connect_timeout: float = 5.0
        read_timeout: float = 120.0

        def _complete(self, messages: list[dict[str, Any]]) -> tuple[str, int, int]:
            import httpx
            from openai import OpenAI

            client = OpenAI(api_key=self.api_key or "none", base_url=self.base_url, max_retries=0,
                            timeout=httpx.Timeout(self.read_timeout, connect=self.connect_timeout))
            kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
            if self.temperature is not None:
                kwargs["temperature"] = self.temperature
            if self.stop_sequences:
                kwargs["stop"] = self.stop_sequences[:4]
            response = client.chat.completions.create(**kwargs)
            text = response.choices[0].message.content or ""
            usage = response.usage
            return (text, usage.prompt_tokens if usage else estimate_tokens(messages_text(messages)),
                    usage.completion_tokens if usage else estimate_tokens(text))

    class AnthropicLLM(MeteredLLM):
        """Anthropic through the ``anthropic`` SDK (crewai[anthropic] pins anthropic~=0.73, see DESIGN.md)."""

        connect_timeout: float = 5.0
        read_timeout: float = 120.0

        def _complete(self, messages: list[dict[str, Any]]) -> tuple[str, int, int]:
            import anthropic

            # anthropic 2.x ships its own httpx fork: its Timeout class, not httpx's
            client = anthropic.Anthropic(api_key=self.api_key, base_url=self.base_url, max_retries=0,
                                         timeout=anthropic.Timeout(self.read_timeout, connect=self.connect_timeout))
            system = "\n\n".join(str(m["content"]) for m in messages if m.get("role") == "system")
            chat = [{"role": "assistant" if m.get("role") == "assistant" else "user", "content": str(m["content"])}
                    for m in messages if m.get("role") != "system"]
            kwargs: dict[str, Any] = {"model": self.model, "max_tokens": int(self.max_tokens or 8192),
                                      "messages": chat}
            if system:
                kwargs["system"] = system
            if self.stop_sequences:
                kwargs["stop_sequences"] = self.stop_sequences[:4]
            response = client.messages.create(**kwargs)
            text = "".join(getattr(block, "text", "") for block in response.content)
            return text, response.usage.input_tokens, response.usage.output_tokens

    _CLASSES.update(MeteredLLM=MeteredLLM, OpenAICompatibleLLM=OpenAICompatibleLLM, AnthropicLLM=AnthropicLLM)
    return _CLASSES


def make_llm(settings: LlmSettings) -> Any:
    """The ``crewai.BaseLLM`` for ``settings`` (no network call is made here)."""
    classes = llm_classes()
    cls = classes["AnthropicLLM"] if settings.provider == "anthropic" else classes["OpenAICompatibleLLM"]
    llm = cls(model=settings.model, api_key=settings.api_key, base_url=settings.base_url, provider=settings.provider,
              temperature=0.0, label=settings.label, connect_timeout=settings.connect_timeout,
              read_timeout=settings.read_timeout)
    llm.retry_policy.max_attempts = settings.max_attempts
    return llm


def select_brain(llm: str | None = None, base_url: str | None = None, on_error: str | None = None,
                 project: Path | None = None, notice: Callable[[str], None] = lambda _m: None,
                 connect_timeout: float | None = None) -> Any:
    """The brain for ``propose``: the CrewAI crew when an LLM is configured, else the deterministic brain.

    ``notice`` is called exactly once when no LLM is configured.

    Raises:
        ConfigError: On an unknown provider, or a provider whose key is missing.
    """
    settings, message = resolve_settings(llm, base_url, on_error, connect_timeout=connect_timeout)
    if settings is None:
        from dataeng_crew.agents.brains import DeterministicBrain

        notice(message or "running the deterministic brain")
        return DeterministicBrain()
    from dataeng_crew.agents.crew import CrewBrain
    from dataeng_crew.settings import find_project

    try:  # the read-project-files and dbt tools need the project; the flow reports a missing one itself
        project = find_project(project)
    except ConfigError:
        project = None
    return CrewBrain(make_llm(settings), on_error=settings.on_error, project=project, label=settings.label)
