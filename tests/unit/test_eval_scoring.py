"""Spider2-style scoring, table-driven: it must reward the right table and nothing else."""

import datetime as dt
from decimal import Decimal

import pytest

from dataeng_crew.evaluate import columns_match, score_tables

GOLD = {"day": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)], "net": [10.0, 20.005]}

CASES = [
    ("same table", {"sales_date": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)], "net_sales": [Decimal("10.00"), Decimal("20.01")]}, 1.0),
    ("rows in another order", {"d": [dt.date(2024, 1, 2), dt.date(2024, 1, 1)], "n": [20.0, 10.0]}, 1.0),
    ("extra produced columns are fine", {"x": [1, 2], "d": GOLD["day"], "n": [10, 20], "y": ["a", "b"]}, 1.0),
    ("empty table", {"d": [], "n": []}, 0.0),
    ("no table", {}, 0.0),
    ("value off by more than 0.01", {"d": GOLD["day"], "n": [10.0, 20.05]}, 0.0),
    ("a gold column missing", {"d": GOLD["day"]}, 0.0),
    ("a row missing", {"d": GOLD["day"][:1], "n": [10.0]}, 0.0),
    ("an extra row", {"d": GOLD["day"] + [dt.date(2024, 1, 3)], "n": [10.0, 20.0, 0.0]}, 0.0),
    ("all nulls", {"d": [None, None], "n": [None, None]}, 0.0),
]


@pytest.mark.parametrize(("label", "produced", "expected"), CASES, ids=[c[0] for c in CASES])
def test_score(label, produced, expected):
    score, matches = score_tables(GOLD, produced)
    assert score == expected, (label, matches)


def test_one_produced_column_cannot_satisfy_two_gold_columns():
    gold = {"a": [1, 2], "b": [1, 2]}
    assert score_tables(gold, {"x": [1, 2]})[0] == 0.0
    assert score_tables(gold, {"x": [1, 2], "y": [2, 1]})[0] == 1.0


def test_strings_match_exactly_and_empty_gold_never_matches():
    assert columns_match(["paid", "refunded"], ["refunded", "paid"])
    assert not columns_match(["paid"], ["Paid"])
    assert not columns_match([], [])


def test_two_roundings_of_a_half_cent_tie_match():
    # 1048596.705 rounded as a double (…70) and as a decimal (…71): one cent apart, both valid
    assert columns_match([1048596.70], [1048596.71])
    assert not columns_match([1048596.70], [1048596.72])
