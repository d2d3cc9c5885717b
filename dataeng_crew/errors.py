"""The one error hierarchy of dataeng-crew.

Every error the tool raises on purpose derives from :class:`DataengCrewError`; the CLI turns
them into a clear message and an exit code, never a traceback.
"""

from __future__ import annotations


class DataengCrewError(Exception):
    """Base class of every error raised on purpose by dataeng-crew.

    Attributes:
        exit_code: Process exit code the CLI uses for this error.
    """

    exit_code: int = 1


class ConfigError(DataengCrewError):
    """The project, warehouse or options are missing or inconsistent."""

    exit_code = 2


class WarehouseError(DataengCrewError):
    """The warehouse cannot be opened, read or profiled (corrupt, empty, locked, not DuckDB, ragged CSV)."""

    exit_code = 9


class RequestError(DataengCrewError):
    """The request is empty or cannot be mapped onto the warehouse."""

    exit_code = 3


class AlreadyAnswered(RequestError):
    """A model the project already has answers the request: nothing new is proposed (no other reading is tried)."""


class UnsafeArtifactError(DataengCrewError):
    """An artifact (SQL, Jinja or a file path) breaks the safety rules; nothing was written or run."""

    exit_code = 4


class SqlCheckError(DataengCrewError):
    """Generated SQL failed the sqlglot checks."""

    exit_code = 5


class BuildError(DataengCrewError):
    """`dbt build` of the proposal failed."""

    exit_code = 6


class PublishError(DataengCrewError):
    """The validated proposal could not be published (git or GitHub)."""

    exit_code = 7


class BusyError(DataengCrewError):
    """Another dataeng-crew run holds this repository's lock."""

    exit_code = 10


class ApprovalPending(DataengCrewError):
    """The proposal was validated but needs an approver named in the governance policy before it is published."""

    exit_code = 11


class AccessDenied(DataengCrewError):
    """The caller may not do this (no or a wrong API token, a bad webhook signature, not an approver)."""

    exit_code = 12


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (exit 143 instead of 130)."""

    exit_code = 143
