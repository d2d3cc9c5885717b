with per_week as (
    select cast(date_trunc('week', r.read_at) as date) as week, count(distinct r.meter_id) as active_meters
    from meters.readings as r
    where lower(trim(r.reading_status)) not in ('error', 'void')
    group by 1
),
weeks as (select cast(unnest(generate_series(min(week), max(week), interval 1 week)) as date) as week from per_week)
select w.week, coalesce(p.active_meters, 0) as active_meters
from weeks as w left join per_week as p on p.week = w.week
