select
    cast(date_trunc('month', r.requested_at) as date) as month,
    r.driver_id,
    count(*) as rides,
    round(sum(r.fare_cents) / 100.0, 2) as fares
from rides.rides as r
where lower(trim(r.status)) not in ('cancelled', 'no_show')
group by 1, 2
