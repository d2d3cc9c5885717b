with valid as (
    select cast(date_trunc('month', r.requested_at) as date) as month, z.zone_name, r.fare_cents
    from rides.rides as r
    left join rides.zones as z on z.id = r.pickup_zone_id
    where lower(trim(r.status)) not in ('cancelled', 'no_show')
),
per_month as (select month, zone_name, sum(fare_cents) as cents from valid group by 1, 2),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
),
zones as (select distinct zone_name from per_month)
select m.month, z.zone_name, round(coalesce(p.cents, 0) / 100.0, 2) as fares
from months as m
cross join zones as z
left join per_month as p on p.month = m.month and p.zone_name is not distinct from z.zone_name
