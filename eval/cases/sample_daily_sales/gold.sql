-- Hand-written over the raw sample tables, independently of the generator's staging code.
-- One row per day from the first to the last order/refund day; test and cancelled orders excluded;
-- refunds on the refund day; money in dollars.
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
gross as (
    select v.day, sum(l.quantity * l.price) as cents
    from valid as v join lines as l on l.order_id = v.id group by v.day
),
per_day as (
    select day, count(*) as orders, count(distinct customer_id) as customers, sum(total_discounts) as discount_cents
    from valid group by day
),
refund_day as (
    select cast(r.created_at as date) as day, sum(r.amount) as cents
    from refunds as r where r.order_id in (select id from valid) group by 1
),
days as (
    select cast(unnest(generate_series(min(day), max(day), interval 1 day)) as date) as day
    from (select day from per_day union all select day from refund_day)
)
select
    d.day,
    coalesce(p.orders, 0) as orders,
    coalesce(p.customers, 0) as customers,
    coalesce(g.cents, 0) / 100.0 as gross,
    coalesce(p.discount_cents, 0) / 100.0 as discounts,
    coalesce(r.cents, 0) / 100.0 as refunds,
    (coalesce(g.cents, 0) - coalesce(p.discount_cents, 0) - coalesce(r.cents, 0)) / 100.0 as net
from days as d
left join per_day as p on p.day = d.day
left join gross as g on g.day = d.day
left join refund_day as r on r.day = d.day
