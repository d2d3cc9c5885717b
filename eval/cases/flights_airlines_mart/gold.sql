select a.carrier, a.name, count(f.carrier) as flights
from nycflights13.airlines as a
left join nycflights13.flights as f on f.carrier = a.carrier
group by a.carrier, a.name
