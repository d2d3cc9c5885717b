with per_month as (
    select cast(date_trunc('month', r.requested_at) as date) as month, sum(r.fare_cents) as cents
    from rides.rides as r
    where lower(trim(r.status)) not in ('cancelled', 'no_show')
    group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, round(coalesce(p.cents, 0) / 100.0, 2) as fares
from months as m left join per_month as p on p.month = m.month
