with per_day as (
    select cast(started_at as date) as day, lower(trim(outcome)) as outcome, count(*) as calls
    from support.calls
    group by 1, 2
),
days as (select cast(unnest(generate_series(min(day), max(day), interval 1 day)) as date) as day from per_day),
outcomes as (select distinct outcome from per_day)
select d.day, o.outcome, coalesce(p.calls, 0) as calls
from days as d
cross join outcomes as o
left join per_day as p on p.day = d.day and p.outcome is not distinct from o.outcome
