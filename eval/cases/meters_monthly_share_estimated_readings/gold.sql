with per_month as (
    select cast(date_trunc('month', r.read_at) as date) as month,
           count(*) filter (where lower(trim(r.reading_status)) = 'estimated') as estimated, count(*) as readings
    from meters.readings as r
    where lower(trim(r.reading_status)) not in ('error', 'void')
    group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, p.estimated / nullif(p.readings, 0) as share_estimated_readings
from months as m left join per_month as p on p.month = m.month
