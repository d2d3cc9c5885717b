select cast(date_trunc('week', make_date(year, month, day)) as date) as week, count(*) as flights,
       sum(distance) as miles
from nycflights13.flights
where origin = 'JFK'
group by 1
