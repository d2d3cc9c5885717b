with per_week as (
    select cast(date_trunc('week', started_at) as date) as week,
           count(*) filter (where lower(trim(outcome)) = 'missed') as missed, count(*) as calls
    from support.calls
    group by 1
),
weeks as (select cast(unnest(generate_series(min(week), max(week), interval 1 week)) as date) as week from per_week)
select w.week, p.missed / nullif(p.calls, 0) as share_missed_calls
from weeks as w left join per_week as p on p.week = w.week
