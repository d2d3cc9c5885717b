with per_week as (
    select cast(date_trunc('week', make_timestamp(cast(e.event_time as bigint) * 1000000)) as date) as week,
           count(*) as logins
    from rides.events as e
    where lower(trim(e.kind)) = 'login'
    group by 1
),
weeks as (select cast(unnest(generate_series(min(week), max(week), interval 1 week)) as date) as week from per_week)
select w.week, coalesce(p.logins, 0) as logins
from weeks as w left join per_week as p on p.week = w.week
