select z.zone_name, round(avg(r.fare_cents) / 100.0, 2) as average_fare
from rides.rides as r
left join rides.zones as z on z.id = r.pickup_zone_id
where lower(trim(r.status)) not in ('cancelled', 'no_show')
group by z.zone_name
