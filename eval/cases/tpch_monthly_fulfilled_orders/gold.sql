with per_month as (
    select cast(date_trunc('month', o_orderdate) as date) as month, count(*) as orders
    from tpch.orders
    where o_orderstatus = 'F'
    group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month
    from per_month
)
select m.month, coalesce(p.orders, 0) as orders
from months as m
left join per_month as p on p.month = m.month
