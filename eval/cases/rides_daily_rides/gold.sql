with per_day as (
    select cast(r.requested_at as date) as day, count(*) as rides
    from rides.rides as r
    where lower(trim(r.status)) not in ('cancelled', 'no_show')
    group by 1
),
days as (select cast(unnest(generate_series(min(day), max(day), interval 1 day)) as date) as day from per_day)
select d.day, coalesce(p.rides, 0) as rides
from days as d left join per_day as p on p.day = d.day
