with per_week as (
    select cast(date_trunc('week', read_at) as date) as week, count(*) as estimated_readings
    from meters.readings
    where lower(trim(reading_status)) = 'estimated'
    group by 1
),
weeks as (select cast(unnest(generate_series(min(week), max(week), interval 1 week)) as date) as week from per_week)
select w.week, coalesce(p.estimated_readings, 0) as estimated_readings
from weeks as w left join per_week as p on p.week = w.week
