"""Edits of a dbt properties file that leave every line they do not own as the project wrote it.

A project that keeps one ``schema.yml`` per folder gets its new models' entries in that file. Dumping the whole
file again would reflow the project's comments, blank lines and quoting, so a reviewer would see every line
change: these edits work on the text of the ``models:`` block instead, item by item, and check the result
against the intended document before returning it.
"""

from __future__ import annotations

import re
from typing import Any, Collection, Sequence

import yaml

_TOP_KEY = re.compile(r"^[^\s#-][^:]*:")


class _Dumper(yaml.SafeDumper):
    """Indent sequences under their key, as dbt projects are usually written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:  # noqa: ARG002
        return super().increase_indent(flow, False)


def dump_yaml(data: Any) -> str:
    """YAML in dbt's usual layout: block style, keys in insertion order, indented lists."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)


def _block(lines: list[str], key: str) -> tuple[int, int] | None:
    """The lines ``[start, end)`` of the top-level ``key:`` block's items, or None when the key is absent.

    Raises:
        ValueError: When the key holds a flow collection or a scalar on its own line (no line edit is safe).
    """
    head = next((i for i, line in enumerate(lines) if re.match(rf"^{re.escape(key)}\s*:", line)), None)
    if head is None:
        return None
    if not re.match(rf"^{re.escape(key)}\s*:\s*(#.*)?$", lines[head]):
        raise ValueError(f"{key} is not a block list")
    end = next((i for i in range(head + 1, len(lines)) if _TOP_KEY.match(lines[i])), len(lines))
    while end > head + 1 and not lines[end - 1].strip():
        end -= 1  # blank lines before the next key stay with it
    return head + 1, end


def _items(lines: list[str], start: int, end: int) -> tuple[str, list[tuple[int, int]]] | None:
    """The indent of the block's list items and each item's line span; None when the block is no plain list."""
    first = next((i for i in range(start, end) if lines[i].strip() and not lines[i].lstrip().startswith("#")), None)
    if first is None:
        return "  ", []
    match = re.match(r"^(\s*)- ", lines[first])
    if match is None:
        return None
    indent = match.group(1)
    starts = [i for i in range(first, end) if lines[i].startswith(indent + "- ")]
    return indent, [(s, (starts[k + 1] if k + 1 < len(starts) else end)) for k, s in enumerate(starts)]


def _entry_text(entry: dict[str, Any], indent: str) -> list[str]:
    """``entry`` as list-item lines at ``indent``."""
    return [indent + line if line else line for line in dump_yaml([entry]).splitlines(keepends=True)]


def _added(entries: list[dict[str, Any]], indent: str, spaced: bool, gap_after: bool = False) -> list[str]:
    """New entries as lines, a blank line between them where the file spaces its entries."""
    out: list[str] = []
    for k, entry in enumerate(entries):
        out += _entry_text(entry, indent)
        if spaced and (gap_after or k + 1 < len(entries)):
            out.append("\n")
    return out


def _item_name(lines: list[str], span: tuple[int, int], indent: str) -> str | None:
    """The ``name:`` of the list item on ``span``."""
    text = "".join(line[len(indent):] if line.startswith(indent) else line for line in lines[span[0]:span[1]])
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return loaded[0].get("name") if isinstance(loaded, list) and loaded and isinstance(loaded[0], dict) else None


def edit_entries(text: str, key: str, upserts: Sequence[dict[str, Any]] = (), drops: Collection[str] = ()
                 ) -> str | None:
    """``text`` with the ``key:`` entries named in ``upserts`` replaced in place (or appended) and ``drops`` removed.

    Every other line of the file is kept byte for byte. New entries follow the file's item indentation and its
    blank-line spacing between items.

    Args:
        text: A dbt properties file.
        key: ``models`` or ``sources``.
        upserts: Entries to write, each with a ``name``.
        drops: Names of entries to remove.

    Returns:
        The edited text, or None when the file is not laid out so that a line edit is safe (the caller then
        rewrites the document).
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    try:
        block = _block(lines, key)
    except ValueError:
        return None
    if block is None:
        lines += ["\n" if lines and lines[-1].strip() else "", f"{key}:\n"]
        block = (len(lines), len(lines))
    found = _items(lines, *block)
    if found is None:
        return None
    indent, spans = found
    spaced = any(not lines[end - 1].strip() for _, end in spans[:-1])
    names = [_item_name(lines, span, indent) for span in spans]
    ordered = len(names) > 1 and all(isinstance(n, str) for n in names) and names == sorted(names)
    wanted = {e["name"]: e for e in upserts}
    new = [n for n in wanted if n not in names]
    out = lines[:spans[0][0]] if spans else lines[:block[1]]
    for name, span in zip(names, spans):
        if ordered:  # a file kept in name order: a new entry takes its place (two proposals rarely touch one spot)
            out += _added([wanted[n] for n in new if n < name], indent, spaced, gap_after=True)
            new = [n for n in new if not n < name]
        if name in drops:
            continue
        if name in wanted:
            gap = ["\n"] if spaced and not lines[span[1] - 1].strip() else []
            out += _entry_text(wanted[name], indent) + gap
        else:
            out += lines[span[0]:span[1]]
    if spaced and new and out and out[-1].strip():
        out.append("\n")
    out += _added([wanted[n] for n in new], indent, spaced)
    while len(out) > block[0] and not out[-1].strip():
        out.pop()  # the gap before a dropped last entry
    out += lines[block[1]:]
    edited = "".join(out)
    return edited if _as_intended(text, edited, key, upserts, drops) else None


def _as_intended(before: str, after: str, key: str, upserts: Sequence[dict[str, Any]], drops: Collection[str]
                 ) -> bool:
    """Whether ``after`` is ``before``'s document with exactly the intended entries changed."""
    try:
        old, new = yaml.safe_load(before) or {}, yaml.safe_load(after)
    except yaml.YAMLError:
        return False
    if not isinstance(old, dict) or not isinstance(new, dict):
        return False
    changed = {*drops, *(e["name"] for e in upserts)}
    kept = [e for e in old.get(key) or [] if not (isinstance(e, dict) and e.get("name") in changed)]
    got = new.get(key) or []
    return ([e for e in got if not (isinstance(e, dict) and e.get("name") in changed)] == kept
            and all(e in got for e in upserts) and len(got) == len(kept) + len(upserts)
            and {k: v for k, v in new.items() if k != key} == {k: v for k, v in old.items() if k != key})
