with per_month as (
    select cast(date_trunc('month', make_date(year, month, day)) as date) as month, carrier, count(*) as flights
    from nycflights13.flights
    group by 1, 2
),
grid as (
    select m.month, c.carrier
    from (select distinct month from per_month) as m
    cross join (select distinct carrier from per_month) as c
)
select g.month, g.carrier, coalesce(p.flights, 0) as flights
from grid as g
left join per_month as p on p.month = g.month and p.carrier = g.carrier
