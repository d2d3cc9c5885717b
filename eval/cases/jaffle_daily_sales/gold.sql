-- Hand-written over the raw jaffle-shop CSVs: every day from the first to the last order,
-- orders per day and the dollars paid for them (payments are in cents).
with per_order as (
    select o.id, o.order_date, o.user_id, coalesce(sum(p.amount), 0) as cents
    from raw_jaffle_shop_classic.raw_orders as o
    left join raw_jaffle_shop_classic.raw_payments as p on p.order_id = o.id
    group by o.id, o.order_date, o.user_id
),
per_day as (
    select order_date as day, count(*) as orders, count(distinct user_id) as customers, sum(cents) / 100.0 as gross
    from per_order group by order_date
),
days as (
    select cast(unnest(generate_series(min(day), max(day), interval 1 day)) as date) as day from per_day
)
select d.day, coalesce(p.orders, 0) as orders, coalesce(p.customers, 0) as customers, coalesce(p.gross, 0) as gross
from days as d left join per_day as p on p.day = d.day
