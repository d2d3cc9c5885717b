with orders as (
    select * from raw_shop.orders
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
valid as (
    select
        o.id,
        o.customer_id,
        coalesce(try_strptime(o.created_at, '%Y-%m-%d %H:%M:%S'),
                 try_strptime(o.created_at, '%Y-%m-%dT%H:%M:%SZ')) as created
    from orders as o
    where not o.test and o.cancelled_at is null
      and (o.financial_status is null or o.financial_status not in ('voided'))
),
firsts as (
    select cast(date_trunc('month', created) as date) as month
    from valid
    where customer_id is not null and created is not null
    qualify row_number() over (partition by customer_id order by created, id) = 1
),
per_month as (select month, count(*) as first_orders from firsts group by 1),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, coalesce(p.first_orders, 0) as first_orders
from months as m left join per_month as p on p.month = m.month
