"""Layout of generated model SQL as dbt Labs' style guide has it: lines of at most 80 characters, one condition per
line under ``where``. Only whitespace changes: the statement sqlglot parses and dbt builds is the same.

``wrap_long_lines`` breaks a select item that is too long at the parentheses of its outermost call, one argument per
line, and again inside an argument that is still too long::

    cast(coalesce(orders_per_period.gross_sales, 0) as decimal(18, 2)) as gross_sales,

becomes::

    cast(
        coalesce(orders_per_period.gross_sales, 0) as decimal(18, 2)
    ) as gross_sales,
"""

from __future__ import annotations

import re

MAX_LINE = 80
WHERE = re.compile(r"^(?P<indent>\s*)where (?P<first>\S.*)$")


def _split_call(text: str) -> tuple[str, list[str], str] | None:
    """``(head, arguments, tail)`` of the first call with arguments in ``text`` (outside quotes), or None."""
    quote = None
    start = None
    depth = 0
    args: list[str] = []
    last = 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
            if depth == 1 and i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
                start, last = (i, i + 1) if start is None else (start, last)
        elif ch == ")":
            depth -= 1
            if depth == 0 and start is not None:
                args.append(text[last:i].strip())
                if any(args):
                    return text[: start + 1], [a for a in args if a], text[i:]
                start, args = None, []  # ``row_number()``: nothing to break, look further
        elif ch == "," and depth == 1 and start is not None:
            args.append(text[last:i].strip())
            last = i + 1
    return None


def _wrap(line: str, width: int) -> list[str]:
    """``line`` broken at its outermost call while it is longer than ``width``."""
    if len(line) <= width or "{{" in line or "{%" in line or "--" in line:
        return [line]
    indent = line[: len(line) - len(line.lstrip())]
    parts = _split_call(line.strip())
    if parts is None:
        return [line]
    head, args, tail = parts
    inner = indent + "    "
    out = [indent + head]
    for n, arg in enumerate(args):
        out += _wrap(inner + arg + ("," if n < len(args) - 1 else ""), width)
    out.append(indent + tail)
    return out


def wrap_long_lines(sql: str, width: int = MAX_LINE) -> str:
    """``sql`` with each ``where`` holding several conditions laid out one per line, and every line longer than
    ``width`` broken at the parentheses of its outermost call (lines with Jinja or comments are left as they are).

    Args:
        sql: A model's SQL.
        width: The longest line wanted.

    Returns:
        The same statement, laid out again.
    """
    lines = sql.split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        m = WHERE.match(line)
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if m and nxt.startswith(m.group("indent") + "    and "):
            out += [m.group("indent") + "where", m.group("indent") + "    " + m.group("first")]
            continue
        out += _wrap(line, width)
    return "\n".join(out)
