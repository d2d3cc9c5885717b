select z.borough, avg(epoch(r.dropoff_at - r.pickup_at) / 60.0) as average_ride_minutes
from rides.rides as r
left join rides.zones as z on z.id = r.pickup_zone_id
where lower(trim(r.status)) not in ('cancelled', 'no_show') and r.pickup_at is not null and r.dropoff_at is not null
group by z.borough
