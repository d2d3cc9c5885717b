"""PII detection from names and values, table-driven."""

import pytest

from dataeng_crew.tools.pii import classify_column, luhn_valid

CASES = [
    # (column name, sample values, expected kind or None)
    ("email", ["a.b@example.com", "x@y.org"], "email"),
    ("EmailAddress", [], "email"),
    ("contact", ["a.b@example.com", "c@d.io", "e@f.net"], "email"),  # by values alone
    ("phone", ["+1-555-1234567"], "phone"),
    ("mobile_number", [], "phone"),
    ("first_name", ["Ava"], "person_name"),
    ("LastName", ["Smith"], "person_name"),
    ("address1", ["12 Oak Street"], "street_address"),
    ("shipping_address_line_2", [], "street_address"),
    ("notes", ["221b Baker Street", "10 Downing St", "1600 Pennsylvania Avenue"], "street_address"),
    ("date_of_birth", ["1990-01-01"], "birth_date"),
    ("ip_address", ["10.0.0.1"], "ip_address"),
    ("client", ["192.168.1.10", "2001:db8::1", "8.8.8.8"], "ip_address"),
    ("ssn", ["123-45-6789"], "national_id"),
    ("ref", ["123-45-6789", "987-65-4321"], "national_id"),
    ("card_number", [], "card_number"),
    ("payment_ref", ["4111 1111 1111 1111", "5500-0000-0000-0004"], "card_number"),
    ("payment_ref", ["4111 1111 1111 1112", "1234 5678 9012 3456"], None),  # fail Luhn: not cards
    ("order_id", ["1001", "1002"], None),
    ("order_date", ["2018-01-01", "2018-01-02"], None),  # dates are not phone numbers
    ("seen", ["01/02/2018", "2018.03.04"], None),
    ("status", ["paid", "refunded"], None),
    ("amount", ["12.50", "100"], None),
    ("username", ["jdoe"], None),
]


@pytest.mark.parametrize(("name", "samples", "kind"), CASES)
def test_classify_column(name, samples, kind):
    found = classify_column(name, samples)
    assert (found[0] if found else None) == kind


def test_evidence_never_quotes_values():
    kind, confidence, evidence = classify_column("email", ["secret.person@example.com"])
    assert kind == "email" and confidence > 0.9
    assert "secret" not in evidence and "@" not in evidence and "1/1 sampled values" in evidence


@pytest.mark.parametrize(("number", "valid"), [("4111111111111111", True), ("4111111111111112", False),
                                               ("378282246310005", True), ("12345", False)])
def test_luhn(number, valid):
    assert luhn_valid(number) is valid
