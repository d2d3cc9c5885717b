with per_week as (
    select cast(date_trunc('week', r.requested_at) as date) as week, count(distinct r.rider_id) as active_riders
    from rides.rides as r
    where lower(trim(r.status)) not in ('cancelled', 'no_show')
    group by 1
),
weeks as (select cast(unnest(generate_series(min(week), max(week), interval 1 week)) as date) as week from per_week)
select w.week, coalesce(p.active_riders, 0) as active_riders
from weeks as w left join per_week as p on p.week = w.week
