-- Hand-written over the raw sample tables: one row per month and customer country (guest orders: null
-- country), every country seen in every month from the first to the last order/refund month; test and
-- cancelled orders excluded; refunds in the refund's month, under the order's country; money in dollars.
with orders as (
    select * from raw_shop.orders
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
customers as (
    select * from raw_shop.customers
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
        c.country_code as country,
        cast(date_trunc('month', coalesce(try_strptime(o.created_at, '%Y-%m-%d %H:%M:%S'),
                                          try_strptime(o.created_at, '%Y-%m-%dT%H:%M:%SZ'))) as date) as month
    from orders as o
    left join customers as c on c.id = o.customer_id
    where not o.test and o.cancelled_at is null
),
gross as (
    select v.month, v.country, sum(l.quantity * l.price) as cents
    from valid as v join lines as l on l.order_id = v.id
    group by v.month, v.country
),
per_month as (
    select month, country, count(*) as orders, count(distinct customer_id) as customers,
           sum(total_discounts) as discount_cents
    from valid group by month, country
),
refund_month as (
    select cast(date_trunc('month', r.created_at) as date) as month, v.country, sum(r.amount) as cents
    from refunds as r join valid as v on v.id = r.order_id
    group by 1, 2
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month
    from (select month from per_month union all select month from refund_month)
),
grid as (
    select months.month, countries.country from months cross join (select distinct country from valid) as countries
)
select
    g.month,
    g.country,
    coalesce(p.orders, 0) as orders,
    coalesce(p.customers, 0) as customers,
    coalesce(s.cents, 0) / 100.0 as gross,
    coalesce(p.discount_cents, 0) / 100.0 as discounts,
    coalesce(r.cents, 0) / 100.0 as refunds,
    (coalesce(s.cents, 0) - coalesce(p.discount_cents, 0) - coalesce(r.cents, 0)) / 100.0 as net
from grid as g
left join per_month as p on p.month = g.month and p.country is not distinct from g.country
left join gross as s on s.month = g.month and s.country is not distinct from g.country
left join refund_month as r on r.month = g.month and r.country is not distinct from g.country
