"""Layout of generated SQL: only whitespace changes, lines ≤ 80 characters, one condition per line under where."""

from __future__ import annotations

import re

import pytest
import sqlglot

from dataeng_crew.tools.sql_style import wrap_long_lines

CASES = [
    ("        cast(coalesce(orders_per_period.gross_sales, 0) as decimal(18, 2)) as gross_sales,",
     ["        cast(", "            coalesce(orders_per_period.gross_sales, 0) as decimal(18, 2)",
      "        ) as gross_sales,"]),
    ("        cast(coalesce(try_strptime(created_at, '%Y-%m-%d %H:%M:%S'), try_strptime(created_at, '%Y-%m-%dT%H:%M:%SZ')) "
     "as timestamp) as created_at,",
     ["        cast(", "            coalesce(", "                try_strptime(created_at, '%Y-%m-%d %H:%M:%S'),",
      "                try_strptime(created_at, '%Y-%m-%dT%H:%M:%SZ')", "            ) as timestamp",
      "        ) as created_at,"]),
    ("        count(*) as order_count,", ["        count(*) as order_count,"]),  # short: unchanged
    ("    qualify row_number() over (partition by order_id order by updated_at desc) = 1",  # no argument to break
     ["    qualify row_number() over (partition by order_id order by updated_at desc) = 1"]),
    ("    select * from {{ ref('a_very_long_model_name_that_goes_on_and_on_and_on_and_on_and_on') }} as x",
     ["    select * from {{ ref('a_very_long_model_name_that_goes_on_and_on_and_on_and_on_and_on') }} as x"]),
    ("        'a, string (with) commas and parens that is long enough to pass eighty characters' as label,",
     ["        'a, string (with) commas and parens that is long enough to pass eighty characters' as label,"]),
]


@pytest.mark.parametrize("line, expected", CASES)
def test_long_lines_break_at_their_outermost_call(line, expected):
    assert wrap_long_lines(line).split("\n") == expected


def test_where_with_several_conditions_gets_one_per_line():
    sql = "    from orders\n    where not coalesce(is_test, false)\n        and cancelled_at is null\n"
    assert wrap_long_lines(sql) == ("    from orders\n    where\n        not coalesce(is_test, false)\n"
                                    "        and cancelled_at is null\n")
    assert wrap_long_lines("    where x is null\n") == "    where x is null\n"  # one condition: as it is


def test_the_statement_is_the_same():
    sql = ("with orders as (select 1 as id, 2 as gross_sales)\nselect\n"
           "        cast(coalesce(orders.gross_sales, 0) + coalesce(orders.gross_sales, 0) * 2 as decimal(18, 2)) "
           "as doubled,\n        round(avg(coalesce(orders.gross_sales, 0)) filter (where orders.id > 0), 2) as "
           "average_gross_sales\nfrom orders\nwhere orders.id > 0\n    and orders.gross_sales is not null\n")
    out = wrap_long_lines(sql)
    assert max(len(x) for x in out.split("\n")) <= 80
    norm = lambda s: sqlglot.parse_one(re.sub(r"\s+", " ", s), read="duckdb").sql()  # noqa: E731
    assert norm(out) == norm(sql)
