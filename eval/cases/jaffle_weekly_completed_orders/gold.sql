-- Hand-written over the raw jaffle-shop CSVs: weeks (starting Monday) from the first to the last completed
-- order, completed orders per week, their customers and the dollars paid for them (payments are cents).
with completed as (
    select
        o.id,
        o.user_id,
        cast(date_trunc('week', o.order_date) as date) as week,
        coalesce((select sum(p.amount) from raw_jaffle_shop_classic.raw_payments as p where p.order_id = o.id), 0)
            as cents
    from raw_jaffle_shop_classic.raw_orders as o
    where o.status = 'completed'
),
per_week as (
    select week, count(*) as orders, count(distinct user_id) as customers, sum(cents) / 100.0 as gross
    from completed group by week
),
weeks as (
    select cast(unnest(generate_series(min(week), max(week), interval 1 week)) as date) as week from per_week
)
select w.week, coalesce(p.orders, 0) as orders, coalesce(p.customers, 0) as customers, coalesce(p.gross, 0) as gross
from weeks as w left join per_week as p on p.week = w.week
