with per_month as (
    select cast(date_trunc('month', make_date(f.year, f.month, f.day)) as date) as month, a.name as airline,
           count(*) as flights, sum(f.distance) as miles
    from nycflights13.flights as f
    left join nycflights13.airlines as a on a.carrier = f.carrier
    group by 1, 2
),
grid as (
    select m.month, a.airline
    from (select distinct month from per_month) as m
    cross join (select distinct airline from per_month) as a
)
select g.month, g.airline, coalesce(p.flights, 0) as flights, coalesce(p.miles, 0) as miles
from grid as g
left join per_month as p on p.month = g.month and p.airline = g.airline
