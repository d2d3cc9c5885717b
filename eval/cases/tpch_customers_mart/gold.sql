with line_revenue as (
    select l_orderkey, sum(l_extendedprice * (1 - l_discount)) as revenue
    from tpch.lineitem
    group by l_orderkey
)
select c.c_custkey, c.c_mktsegment,
       count(o.o_orderkey) as orders,
       min(o.o_orderdate) as first_order,
       max(o.o_orderdate) as last_order,
       coalesce(sum(l.revenue), 0) as lifetime_value
from tpch.customer as c
left join tpch.orders as o on o.o_custkey = c.c_custkey
left join line_revenue as l on l.l_orderkey = o.o_orderkey
group by c.c_custkey, c.c_mktsegment
