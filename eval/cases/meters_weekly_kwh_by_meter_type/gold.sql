with per_week as (
    select cast(date_trunc('week', r.read_at) as date) as week, lower(trim(m.meter_type)) as meter_type,
           sum(r.kwh) as kwh
    from meters.readings as r
    left join meters.meters as m on m.id = r.meter_id
    where lower(trim(r.reading_status)) not in ('error', 'void')
    group by 1, 2
),
weeks as (select cast(unnest(generate_series(min(week), max(week), interval 1 week)) as date) as week from per_week),
types as (select distinct meter_type from per_week)
select w.week, t.meter_type, round(coalesce(p.kwh, 0), 2) as kwh
from weeks as w
cross join types as t
left join per_week as p on p.week = w.week and p.meter_type is not distinct from t.meter_type
