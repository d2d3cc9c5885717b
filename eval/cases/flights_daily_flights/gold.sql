-- One row per calendar day the flight records state; number of flights and miles flown.
select make_date(year, month, day) as flight_date, count(*) as flights, sum(distance) as miles
from nycflights13.flights
group by 1
