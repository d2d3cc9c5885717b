"""strptime formats (what DuckDB's ``try_strptime`` reads) as each warehouse's null-on-failure parse.

The format is translated directive by directive from a table (``DIRECTIVES``), literal text quoted the
way each dialect wants it; sqlglot's own format mapping leaves ``T``/``Z`` unquoted and uses a raising
``to_timestamp``.
"""

from __future__ import annotations

import re
from typing import Callable

from dataeng_crew.errors import SqlCheckError

# strptime directive -> (postgres template, snowflake format, databricks (Java) pattern, regex of the text)
DIRECTIVES: dict[str, tuple[str, str, str, str]] = {
    "%Y": ("YYYY", "YYYY", "yyyy", r"\d{4}"),
    "%m": ("MM", "MM", "M", r"\d{1,2}"),
    "%d": ("DD", "DD", "d", r"\d{1,2}"),
    "%H": ("HH24", "HH24", "H", r"\d{1,2}"),
    "%M": ("MI", "MI", "m", r"\d{1,2}"),
    "%S": ("SS", "SS", "s", r"\d{1,2}"),
    "%f": ("US", "FF", "SSSSSS", r"\d{1,6}"),
    "%z": ("TZH:TZM", "TZH:TZM", "XXX", r"[+-]\d{2}:?\d{2}"),
}
DIRECTIVE_RX = re.compile(r"%[a-zA-Z%]")


def format_parts(fmt: str) -> list[tuple[bool, str]]:
    """Split a strptime format into (is_directive, text) parts.

    Raises:
        SqlCheckError: For a directive no rule translates (the caller turns it into a warning).
    """
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in DIRECTIVE_RX.finditer(fmt):
        if m.start() > pos:
            parts.append((False, fmt[pos:m.start()]))
        if m.group() not in DIRECTIVES:
            raise SqlCheckError(f"strptime directive {m.group()} has no translation rule")
        parts.append((True, m.group()))
        pos = m.end()
    if pos < len(fmt):
        parts.append((False, fmt[pos:]))
    return parts


def _format(fmt: str, column: int, quote: Callable[[str], str]) -> str:
    return "".join(DIRECTIVES[t][column] if d else quote(t) for d, t in format_parts(fmt))


def _keep_separators(text: str) -> str:
    """Postgres/Snowflake templates: quote literal letters, keep punctuation as is."""
    return "".join(f'"{ch}"' if ch.isalpha() else ch for ch in text)


def strptime_regex(fmt: str) -> str:
    """An anchored regex the text must match before Postgres may parse it with ``fmt``."""
    return "^" + "".join(DIRECTIVES[t][3] if d else re.escape(t) for d, t in format_parts(fmt)) + "$"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def strptime_postgres(col: str, fmt: str) -> str:
    """Null unless the text has the format's shape, then ``to_timestamp`` read as UTC wall-clock time.

    ``to_timestamp`` returns ``timestamptz`` in the session time zone; appending ``+00`` and reading the
    result ``at time zone 'UTC'`` gives the same wall-clock value DuckDB's ``try_strptime`` does.
    """
    template = _format(fmt, 0, _keep_separators)
    if "%z" in fmt:
        parse = f"to_timestamp({col}, {_lit(template)})"
    else:
        parse = f"to_timestamp({col} || ' +00', {_lit(template + ' TZH')})"
    return f"case when {col} ~ {_lit(strptime_regex(fmt))} then {parse} at time zone 'UTC' end"


def strptime_snowflake(col: str, fmt: str) -> str:
    """``try_to_timestamp_ntz`` with the format in Snowflake's elements (literal letters quoted)."""
    return f"try_to_timestamp_ntz({col}, {_lit(_format(fmt, 1, _keep_separators))})"


def strptime_bigquery(col: str, fmt: str) -> str:
    """``SAFE.PARSE_DATETIME`` (strftime elements; fractions as ``%E*S``, offsets via PARSE_TIMESTAMP)."""
    bq = fmt.replace("%S.%f", "%E*S")
    if "%z" in fmt:
        return f"datetime(safe.parse_timestamp({_lit(bq)}, {col}), 'UTC')"
    return f"safe.parse_datetime({_lit(bq)}, {col})"


def strptime_databricks(col: str, fmt: str) -> str:
    """``try_to_timestamp`` with a Java pattern (literal text in single quotes)."""
    pattern = _format(fmt, 2, lambda t: "".join(f"'{ch}'" if ch.isalpha() else ch for ch in t))
    return f"try_to_timestamp({col}, {_lit(pattern)})"


STRPTIME: dict[str, Callable[[str, str], str]] = {
    "postgres": strptime_postgres, "snowflake": strptime_snowflake, "bigquery": strptime_bigquery,
    "databricks": strptime_databricks, "spark": strptime_databricks,
}
STRPTIME_CAVEATS = {
    "postgres": "try_strptime → regex-guarded to_timestamp: text with the right shape but an impossible value "
                "(e.g. month 13) makes the query fail on postgres where DuckDB gives NULL",
}
