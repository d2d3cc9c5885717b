"""Independent computation of daily sales straight from the raw sample tables.

Written by hand against the raw schema, not generated: the mart must agree with it to the cent.
"""

RAW_DAILY_SALES = """
with orders as (
    select * from raw_shop.orders
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
valid as (
    select id, customer_id, total_discounts,
           cast(coalesce(try_strptime(created_at, '%Y-%m-%d %H:%M:%S'),
                         try_strptime(created_at, '%Y-%m-%dT%H:%M:%SZ')) as date) as day
    from orders
    where not test and cancelled_at is null
),
lines as (
    select * from raw_shop.order_lines
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
refunds as (
    select * from raw_shop.refunds
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
per_day as (
    select day, count(*) as orders, count(distinct customer_id) as customers,
           sum((select sum(quantity * price) from lines where lines.order_id = valid.id)) as gross_cents,
           sum(total_discounts) as discount_cents
    from valid group by day
),
refund_day as (
    select cast(created_at as date) as day, sum(amount) as refund_cents
    from refunds where order_id in (select id from valid) group by 1
)
select coalesce(p.day, r.day) as day, coalesce(orders, 0) as orders, coalesce(customers, 0) as customers,
       coalesce(gross_cents, 0) as gross_cents, coalesce(discount_cents, 0) as discount_cents,
       coalesce(refund_cents, 0) as refund_cents
from per_day as p full outer join refund_day as r on p.day = r.day
order by 1
"""
