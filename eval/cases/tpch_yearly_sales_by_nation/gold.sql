with line_revenue as (
    select l_orderkey, sum(l_extendedprice * (1 - l_discount)) as revenue
    from tpch.lineitem
    group by l_orderkey
),
per_year as (
    select cast(date_trunc('year', o.o_orderdate) as date) as year, n.n_name as nation,
           count(*) as orders, count(distinct o.o_custkey) as customers, sum(l.revenue) as revenue
    from tpch.orders as o
    join tpch.customer as c on c.c_custkey = o.o_custkey
    join tpch.nation as n on n.n_nationkey = c.c_nationkey
    left join line_revenue as l on l.l_orderkey = o.o_orderkey
    group by 1, 2
),
grid as (
    select y.year, n.nation
    from (select distinct year from per_year) as y
    cross join (select distinct nation from per_year) as n
)
select g.year, g.nation, coalesce(p.orders, 0) as orders, coalesce(p.customers, 0) as customers,
       coalesce(p.revenue, 0) as revenue
from grid as g
left join per_year as p on p.year = g.year and p.nation = g.nation
