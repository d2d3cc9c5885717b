-- Hand-written over the raw sample tables: one row per product with what its order lines sold,
-- counting only lines of valid orders (not test, not cancelled); money in dollars.
with products as (
    select * from raw_shop.products
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
orders as (
    select * from raw_shop.orders
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
lines as (
    select l.* from raw_shop.order_lines as l
    qualify row_number() over (partition by l.id order by l._loaded_at desc) = 1
),
sold as (
    select
        l.product_id,
        count(*) as line_count,
        sum(l.quantity) as units,
        sum(l.quantity * l.price) as value_cents,
        sum(l.total_discount) as discount_cents
    from lines as l
    join orders as o on o.id = l.order_id
    where not o.test and o.cancelled_at is null
    group by l.product_id
)
select
    p.id as product_id,
    p.price / 100.0 as list_price,
    coalesce(s.line_count, 0) as line_count,
    coalesce(s.units, 0) as units,
    coalesce(s.value_cents, 0) / 100.0 as value,
    coalesce(s.discount_cents, 0) / 100.0 as discount
from products as p
left join sold as s on s.product_id = p.id
