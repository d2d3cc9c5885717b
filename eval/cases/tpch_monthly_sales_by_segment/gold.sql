with line_revenue as (
    select l_orderkey, sum(l_extendedprice * (1 - l_discount)) as revenue
    from tpch.lineitem
    group by l_orderkey
),
per_month as (
    select cast(date_trunc('month', o.o_orderdate) as date) as month, c.c_mktsegment as segment,
           count(*) as orders, sum(l.revenue) as revenue
    from tpch.orders as o
    join tpch.customer as c on c.c_custkey = o.o_custkey
    left join line_revenue as l on l.l_orderkey = o.o_orderkey
    group by 1, 2
),
grid as (
    select m.month, s.segment
    from (select distinct month from per_month) as m
    cross join (select distinct segment from per_month) as s
)
select g.month, g.segment, coalesce(p.orders, 0) as orders, coalesce(p.revenue, 0) as revenue
from grid as g
left join per_month as p on p.month = g.month and p.segment = g.segment
