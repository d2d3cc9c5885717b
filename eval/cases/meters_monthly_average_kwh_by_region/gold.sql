with per_cell as (
    select cast(date_trunc('month', r.read_at) as date) as month, m.region, avg(r.kwh) as average_kwh
    from meters.readings as r
    left join meters.meters as m on m.id = r.meter_id
    where lower(trim(r.reading_status)) not in ('error', 'void')
    group by 1, 2
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_cell
),
regions as (select distinct region from per_cell)
select mo.month, g.region, round(p.average_kwh, 2) as average_kwh
from months as mo
cross join regions as g
left join per_cell as p on p.month = mo.month and p.region is not distinct from g.region
