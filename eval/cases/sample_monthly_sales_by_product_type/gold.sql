-- Hand-written over the raw sample tables: one row per month and product type, every type in every month
-- from the first to the last order/refund month. Valid orders only (not test, not cancelled). An order counts
-- once in each type it has lines of; its discount and refunds are split by each type's share of the order's
-- line value (in cents, rounded to the cent); refunds go to the refund's month. Dollars.
with orders as (
    select * from raw_shop.orders
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
lines as (
    select * from raw_shop.order_lines
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
products as (
    select * from raw_shop.products
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
),
by_type as (
    select l.order_id, p.product_type as kind, sum(l.quantity * l.price) as cents
    from lines as l left join products as p on p.id = l.product_id
    group by l.order_id, p.product_type
),
order_total as (
    select order_id, sum(cents) as cents from by_type group by order_id
),
split as (
    select v.id, v.month, v.customer_id, b.kind, b.cents,
           round(v.total_discounts * b.cents / nullif(t.cents, 0)) as discount_cents,
           b.cents * 1.0 / nullif(t.cents, 0) as share
    from valid as v
    join by_type as b on b.order_id = v.id
    join order_total as t on t.order_id = v.id
),
per_month as (
    select month, kind, count(*) as orders, count(distinct customer_id) as customers, sum(cents) as gross_cents,
           sum(coalesce(discount_cents, 0)) as discount_cents
    from split group by month, kind
),
refund_month as (
    select cast(date_trunc('month', r.created_at) as date) as month, s.kind,
           sum(coalesce(round(r.amount * s.share), 0)) as cents
    from refunds as r join split as s on s.id = r.order_id
    group by 1, 2
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month
    from (select month from per_month union all select month from refund_month)
),
grid as (select months.month, kinds.kind from months cross join (select distinct kind from split) as kinds)
select
    g.month,
    g.kind,
    coalesce(p.orders, 0) as orders,
    coalesce(p.customers, 0) as customers,
    coalesce(p.gross_cents, 0) / 100.0 as gross,
    coalesce(p.discount_cents, 0) / 100.0 as discounts,
    coalesce(r.cents, 0) / 100.0 as refunds
from grid as g
left join per_month as p on p.month = g.month and p.kind is not distinct from g.kind
left join refund_month as r on r.month = g.month and r.kind is not distinct from g.kind
