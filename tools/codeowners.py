"""CODEOWNERS: who owns which paths (GitHub's rules), to request reviews on a proposal's pull request.

Patterns follow gitignore rules as GitHub applies them: a pattern starting with ``/`` or holding a
``/`` inside is relative to the repository root, otherwise it matches at any depth; a trailing ``/``
means a directory; ``*`` stays within a path segment, ``**`` crosses them. For each path the LAST
matching rule wins.
"""

from __future__ import annotations

import re


def _pattern_regex(pattern: str) -> re.Pattern:
    """A gitignore-style CODEOWNERS pattern as a regex over repo-relative posix paths."""
    anchored = pattern.startswith("/") or "/" in pattern.rstrip("/")
    pat = pattern.strip("/")
    directory = pattern.endswith("/")
    out = ""
    i = 0
    while i < len(pat):
        if pat[i:i + 3] == "**/":
            out += "(?:.*/)?"
            i += 3
        elif pat[i:i + 2] == "**":
            out += ".*"
            i += 2
        elif pat[i] == "*":
            out += "[^/]*"
            i += 1
        elif pat[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pat[i])
            i += 1
    prefix = "^" if anchored else "^(?:.*/)?"
    suffix = "/.*$" if directory else "(?:/.*)?$"
    return re.compile(prefix + out + suffix)


def parse_codeowners(text: str) -> list[tuple[str, list[str]]]:
    """``[(pattern, owners)]`` from a CODEOWNERS file, in file order (comments and blanks skipped)."""
    rules = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        pattern, *owners = line.split()
        rules.append((pattern, owners))
    return rules


def codeowners_for(rules: list[tuple[str, list[str]]], paths: list[str]) -> list[str]:
    """Owners of the changed ``paths``: for each path the LAST matching rule wins (GitHub's rule)."""
    compiled = [(_pattern_regex(p), owners) for p, owners in rules]
    found: list[str] = []
    for path in paths:
        owners: list[str] = []
        for regex, rule_owners in compiled:
            if regex.match(path):
                owners = rule_owners
        found += [o for o in owners if o not in found]
    return found


def split_owners(owners: list[str]) -> tuple[list[str], list[str]]:
    """``(users, team slugs)``: ``@user``/``user`` → user, ``@org/team`` → team; emails are skipped."""
    users, teams = [], []
    for owner in owners:
        name = owner.lstrip("@")
        if "@" in name or not name:
            continue  # an e-mail address: GitHub cannot request a review from it by API
        if "/" in name:
            teams.append(name.split("/", 1)[1])
        else:
            users.append(name)
    return users, teams
