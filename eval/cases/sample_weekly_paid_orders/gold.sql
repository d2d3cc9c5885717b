-- Hand-written over the raw sample tables: weeks from the first to the last paid order (or its refund),
-- valid paid orders per week (status compared case- and blank-insensitively), gross from line items,
-- discounts, refunds on the refund's week; dollars.
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
paid as (
    select
        o.id,
        o.customer_id,
        o.total_discounts,
        cast(date_trunc('week', coalesce(try_strptime(o.created_at, '%Y-%m-%d %H:%M:%S'),
                                         try_strptime(o.created_at, '%Y-%m-%dT%H:%M:%SZ'))) as date) as week
    from orders as o
    where not o.test and o.cancelled_at is null and lower(trim(o.financial_status)) = 'paid'
),
per_week as (
    select
        p.week,
        count(*) as orders,
        count(distinct p.customer_id) as customers,
        sum(p.total_discounts) as discount_cents,
        sum(coalesce((select sum(l.quantity * l.price) from lines as l where l.order_id = p.id), 0)) as gross_cents
    from paid as p group by p.week
),
refund_week as (
    select cast(date_trunc('week', r.created_at) as date) as week, sum(r.amount) as cents
    from refunds as r where r.order_id in (select id from paid) group by 1
),
weeks as (
    select cast(unnest(generate_series(min(week), max(week), interval 1 week)) as date) as week
    from (select week from per_week union all select week from refund_week)
)
select
    w.week,
    coalesce(p.orders, 0) as orders,
    coalesce(p.customers, 0) as customers,
    coalesce(p.gross_cents, 0) / 100.0 as gross,
    coalesce(p.discount_cents, 0) / 100.0 as discounts,
    coalesce(r.cents, 0) / 100.0 as refunds
from weeks as w
left join per_week as p on p.week = w.week
left join refund_week as r on r.week = w.week
