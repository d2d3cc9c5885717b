-- Hand-written over the raw sample tables: one row per customer (latest load), valid orders only
-- (not test, not cancelled, not voided), lifetime value = line items - order discounts - refunds, in dollars.
with customers as (
    select * from raw_shop.customers
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
orders as (
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
        coalesce(try_strptime(o.created_at, '%Y-%m-%d %H:%M:%S'),
                 try_strptime(o.created_at, '%Y-%m-%dT%H:%M:%SZ')) as placed
    from orders as o
    where not o.test and o.cancelled_at is null and o.customer_id is not null
      and lower(trim(o.financial_status)) <> 'voided'  -- as the sales marts: a voided order was never a sale
),
per_order as (
    select
        v.id,
        v.customer_id,
        v.placed,
        coalesce((select sum(l.quantity * l.price) from lines as l where l.order_id = v.id), 0)
        - v.total_discounts
        - coalesce((select sum(r.amount) from refunds as r where r.order_id = v.id), 0) as net_cents
    from valid as v
),
per_customer as (
    select customer_id, count(*) as orders, min(placed) as first_at, max(placed) as last_at, sum(net_cents) as cents
    from per_order
    group by customer_id
)
select
    c.id as customer_id,
    sha256(getvariable('pii_key') || lower(trim(c.email))) as email_hash,
    c.country_code,
    coalesce(p.orders, 0) as orders,
    p.first_at,
    p.last_at,
    coalesce(p.cents, 0) / 100.0 as lifetime_value
from customers as c
left join per_customer as p on p.customer_id = c.id
