with per_day as (
    select cast(started_at as date) as day, count(*) as missed_calls
    from support.calls
    where lower(trim(outcome)) = 'missed'
    group by 1
),
days as (select cast(unnest(generate_series(min(day), max(day), interval 1 day)) as date) as day from per_day)
select d.day, coalesce(p.missed_calls, 0) as missed_calls
from days as d left join per_day as p on p.day = d.day
