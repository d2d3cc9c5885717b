"""PII detection from column names and values (pure functions).

Evidence never contains raw values: only which rule matched and how many sampled values did.
"""

from __future__ import annotations

import ipaddress
import re

from dataeng_crew.tools.warehouse import snake_case

NAME_RULES: list[tuple[str, str, float]] = [
    (r"(^|_)e_?mail(_address)?$", "email", 0.9),
    (r"(^|_)(phone|mobile|tel|telephone|fax)(_number)?$", "phone", 0.9),
    (r"^(first|last|middle|full|given|family|sur)_?name$", "person_name", 0.85),
    (r"^(customer|user|contact|person|billing|shipping)_(full_)?name$", "person_name", 0.8),
    (r"(^|_)ip(_?address)?$", "ip_address", 0.8),
    (r"(^|_)(street|address(_?line)?_?\d?|addr_?\d?)$", "street_address", 0.85),
    (r"(^|_)(zip|postal|post)_?code$", "postal_code", 0.6),
    (r"(^|_)(birth_?date|date_of_birth|dob|birthday)$", "birth_date", 0.9),
    (r"(^|_)(ssn|social_security(_number)?|national_id|tax_id|passport(_number)?|nin)$", "national_id", 0.95),
    (r"(^|_)(card_number|cc_number|credit_card(_number)?|pan)$", "card_number", 0.95),
]
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
PHONE = re.compile(r"^\+?[\d][\d\-\s().]{6,18}\d$")
SSN = re.compile(r"^\d{3}-\d{2}-\d{4}$")
STREET = re.compile(r"^\d{1,6}[a-z]?\s+(\w+\s+){0,4}(st|street|ave|avenue|rd|road|blvd|boulevard|lane|ln|dr|drive|"
                    r"way|ct|court|pl|place|sq|square|strasse|straße|rue|via|calle)\b\.?", re.I)
DATE_LIKE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}([ T].*)?$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")
CARD = re.compile(r"^(?:\d[ -]?){13,19}$")


def luhn_valid(number: str) -> bool:
    """True when the digits of ``number`` pass the Luhn checksum (card numbers)."""
    digits = [int(d) for d in re.sub(r"\D", "", number)]
    if len(digits) < 13:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


VALUE_RULES: list[tuple[str, object]] = [
    ("email", EMAIL.match),
    ("card_number", lambda v: bool(CARD.match(v)) and luhn_valid(v)),
    ("national_id", SSN.match),
    ("ip_address", _is_ip),
    ("street_address", STREET.match),
    ("phone", lambda v: bool(PHONE.match(v)) and 7 <= sum(c.isdigit() for c in v) <= 15 and not _is_ip(v)
     and not DATE_LIKE.match(v)),
]


def value_kind(value: str) -> str | None:
    """The PII kind a single value looks like, or None."""
    for kind, rule in VALUE_RULES:
        if rule(value.strip()):  # type: ignore[operator]
            return kind
    return None


def classify_column(name: str, samples: list[str]) -> tuple[str, float, str] | None:
    """Classify a column as PII from its name and sample values.

    Args:
        name: Column name.
        samples: Sample values (matched against patterns, never reported).

    Returns:
        ``(pii_kind, confidence, evidence)`` or None when nothing points at PII.
    """
    clean = snake_case(name)
    kinds = [value_kind(s) for s in samples if s]
    for pattern, kind, confidence in NAME_RULES:
        if re.search(pattern, clean):
            evidence = f"column name matches the {kind} pattern"
            matching = sum(k == kind for k in kinds)
            if matching:
                confidence = min(0.99, confidence + 0.1 * matching / len(kinds))
                evidence += f"; {matching}/{len(kinds)} sampled values look like {kind}"
            return kind, round(confidence, 2), evidence
    if kinds:
        for kind in {k for k in kinds if k}:
            share = sum(k == kind for k in kinds) / len(kinds)
            if share >= 0.8 and (kind != "phone" or share == 1.0):
                return kind, round(0.6 + 0.3 * share, 2), f"{sum(k == kind for k in kinds)}/{len(kinds)} sampled values look like {kind}"
    return None
