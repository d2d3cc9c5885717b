-- Hand-written over the raw sample tables (latest load of each row).
with orders as (
    select * from raw_shop.orders
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
lines as (
    select * from raw_shop.order_lines
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
refunds as (
    select * from raw_shop.refunds
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
valid as (
    select
        o.id,
        o.customer_id,
        o.total_discounts,
        cast(date_trunc('month', coalesce(try_strptime(o.created_at, '%Y-%m-%d %H:%M:%S'),
                                          try_strptime(o.created_at, '%Y-%m-%dT%H:%M:%SZ'))) as date) as month
    from orders as o
    where not o.test and o.cancelled_at is null
      and (o.financial_status is null or o.financial_status not in ('voided'))
),
gross as (
    select v.month, v.customer_id, sum(l.quantity * l.price) as cents
    from valid as v join lines as l on l.order_id = v.id
    group by 1, 2
),
per_month as (
    select month, customer_id, count(*) as orders, sum(total_discounts) as discount_cents
    from valid group by 1, 2
),
refund_month as (
    select cast(date_trunc('month', r.created_at) as date) as month, v.customer_id, sum(r.amount) as cents
    from refunds as r join valid as v on v.id = r.order_id
    group by 1, 2
),
grid as (
    select distinct month, customer_id from (
        select month, customer_id from per_month union all select month, customer_id from refund_month
    )
)
select
    g.month,
    g.customer_id,
    coalesce(p.orders, 0) as orders,
    coalesce(s.cents, 0) / 100.0 as gross,
    coalesce(p.discount_cents, 0) / 100.0 as discounts,
    coalesce(r.cents, 0) / 100.0 as refunds,
    (coalesce(s.cents, 0) - coalesce(p.discount_cents, 0) - coalesce(r.cents, 0)) / 100.0 as net
from grid as g
left join per_month as p on p.month = g.month and p.customer_id is not distinct from g.customer_id
left join gross as s on s.month = g.month and s.customer_id is not distinct from g.customer_id
left join refund_month as r on r.month = g.month and r.customer_id is not distinct from g.customer_id
