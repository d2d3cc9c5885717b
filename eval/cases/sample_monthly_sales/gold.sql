-- Hand-written over the raw sample tables: one row per month (ISO weeks start on Monday), net sales in dollars.
with orders as (
    select * from raw_shop.orders
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
valid as (
    select id, total_discounts,
           cast(date_trunc('month', coalesce(try_strptime(created_at, '%Y-%m-%d %H:%M:%S'),
                                             try_strptime(created_at, '%Y-%m-%dT%H:%M:%SZ'))) as date) as period
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
per_period as (
    select v.period, count(distinct v.id) as orders,
           sum(l.quantity * l.price) as gross_cents
    from valid as v join lines as l on l.order_id = v.id group by v.period
),
discounts as (select period, sum(total_discounts) as cents from valid group by period),
refund_period as (
    select cast(date_trunc('month', r.created_at) as date) as period, sum(r.amount) as cents
    from refunds as r where r.order_id in (select id from valid) group by 1
)
select p.period, p.orders,
       (p.gross_cents - d.cents - coalesce(r.cents, 0)) / 100.0 as net
from per_period as p
join discounts as d on d.period = p.period
left join refund_period as r on r.period = p.period
