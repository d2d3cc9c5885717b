with line_revenue as (
    select l_orderkey, sum(l_extendedprice * (1 - l_discount)) as revenue
    from tpch.lineitem
    group by l_orderkey
)
select cast(date_trunc('month', o.o_orderdate) as date) as month,
       count(*) as orders,
       count(distinct o.o_custkey) as customers,
       sum(coalesce(l.revenue, 0)) as revenue
from tpch.orders as o
left join line_revenue as l on l.l_orderkey = o.o_orderkey
group by 1
