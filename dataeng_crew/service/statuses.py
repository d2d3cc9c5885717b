"""One table: the CLI's exit codes and the HTTP statuses the service answers with for the same outcome.

The API's error bodies have the CLI's ``--json`` error shape: ``{"status", "error", "error_type", "exit_code"}``.
"""

from __future__ import annotations

from typing import Any

from dataeng_crew.errors import AccessDenied, ConfigError, DataengCrewError

# exit code → (HTTP status, what it means); the README's "Run it as a service" section prints the same table
EXIT_TO_HTTP: dict[int, tuple[int, str]] = {
    0: (200, "done"),
    1: (500, "unexpected error (a bug)"),
    2: (400, "ConfigError: project, warehouse or options missing or inconsistent"),
    3: (422, "RequestError: the request cannot be mapped onto the warehouse"),
    4: (422, "UnsafeArtifactError: an artifact broke the safety rules"),
    5: (422, "SqlCheckError: generated SQL failed sqlglot"),
    6: (422, "BuildError: dbt build of the proposal failed"),
    7: (502, "PublishError: git or GitHub refused the publication"),
    9: (503, "WarehouseError: the warehouse cannot be read"),
    10: (429, "BusyError: another run holds the lock, or the queue is full"),
    11: (202, "ApprovalPending: validated, waiting for an approver"),
    12: (403, "AccessDenied: not allowed"),
    130: (503, "interrupted"),
    143: (503, "terminated (SIGTERM)"),
}


def http_status(exit_code: int | None) -> int:
    """The HTTP status for a CLI exit code (unknown codes: 500)."""
    if exit_code is None:
        return 200
    return EXIT_TO_HTTP.get(exit_code, (500, ""))[0]


def error_body(exc: DataengCrewError, status: str = "failed") -> dict[str, Any]:
    """The CLI's ``--json`` error object for ``exc``."""
    return {"status": status, "error": str(exc), "error_type": type(exc).__name__, "exit_code": exc.exit_code}


class Unauthorized(AccessDenied):
    """No or an unknown bearer token, or a bad webhook signature (HTTP 401 rather than 403)."""


class NotFound(ConfigError):
    """No such job (HTTP 404 rather than 400)."""


def status_for(exc: DataengCrewError) -> int:
    """The HTTP status of an error raised while answering a request: the table, refined for 401 and 404."""
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, NotFound):
        return 404
    return http_status(exc.exit_code)
