"""The service's config file (YAML): API tokens, the webhook secret, how proposals are published.

Secrets are read from the file or, better, from the environment variable the file names (``token_env``,
``webhook_secret_env``); they are held in memory only and never written anywhere.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator

from dataeng_crew.errors import ConfigError

DEFAULT_CONFIG = "serve.yml"


class TokenEntry(BaseModel):
    """One API client: its bearer token and the identities it acts as (for approvals)."""

    name: str = Field(description="Who holds the token (recorded in the audit log; never the token).")
    token: SecretStr | None = None
    token_env: str | None = Field(default=None, description="Environment variable holding the token.")
    identities: list[str] = Field(default_factory=list,
                                  description="Handles this client acts as, e.g. ['@alice', '@data-governance'].")

    @model_validator(mode="after")
    def _resolve(self) -> "TokenEntry":
        if self.token is None and self.token_env:
            value = os.environ.get(self.token_env, "").strip()
            self.token = SecretStr(value) if value else None
        if self.token is None or len(self.token.get_secret_value()) < 16:
            raise ValueError(f"token {self.name!r}: set token or token_env to a secret of at least 16 characters")
        return self


class GithubConfig(BaseModel):
    """Where proposals are published on GitHub (the token comes from ``GITHUB_TOKEN``)."""

    repo: str | None = None
    api_url: str | None = None
    draft: bool = True
    throttle: bool = Field(default=True, description="PyGithub's pauses between requests (off for a local fake).")


class ServeConfig(BaseModel):
    """The whole config file."""

    tokens: list[TokenEntry] = Field(default_factory=list)
    webhook_secret: SecretStr | None = None
    webhook_secret_env: str | None = None
    publish: Literal["local", "github", "none", "auto"] = "auto"
    warehouse: Path | None = None
    llm: str | None = None
    queue_size: int = Field(default=20, ge=1, le=10_000)
    github: GithubConfig = Field(default_factory=GithubConfig)

    @model_validator(mode="after")
    def _secret(self) -> "ServeConfig":
        if self.webhook_secret is None and self.webhook_secret_env:
            value = os.environ.get(self.webhook_secret_env, "").strip()
            self.webhook_secret = SecretStr(value) if value else None
        return self

    def client(self, bearer: str | None) -> TokenEntry | None:
        """The client holding ``bearer`` (constant-time comparison), or None."""
        if not bearer:
            return None
        found = None
        for entry in self.tokens:
            assert entry.token is not None
            if hmac.compare_digest(entry.token.get_secret_value().encode(), bearer.encode()):
                found = entry
        return found

    def secrets(self) -> list[str]:
        """Every secret this config holds (for redaction and for the tests that grep for them)."""
        out = [t.token.get_secret_value() for t in self.tokens if t.token is not None]
        return out + ([self.webhook_secret.get_secret_value()] if self.webhook_secret else [])


def load_config(path: Path | None, state_dir: Path) -> ServeConfig:
    """Read the config file (default ``<state dir>/serve.yml``; none: no tokens, so no write endpoint works).

    Args:
        path: The ``--config`` file, or None.
        state_dir: The repository's ``.dataeng-crew`` folder.

    Raises:
        ConfigError: The file is missing (when named), not YAML, or invalid.
    """
    file = path or state_dir / DEFAULT_CONFIG
    if not file.is_file():
        if path is not None:
            raise ConfigError(f"config file not found: {file}")
        return ServeConfig()
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        return ServeConfig.model_validate(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        raise ConfigError(f"{file}: {problems}") from None
