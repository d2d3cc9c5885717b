with firsts as (
    select cast(date_trunc('month', r.requested_at) as date) as month
    from rides.rides as r
    where lower(trim(r.status)) not in ('cancelled', 'no_show') and r.rider_id is not null
      and r.requested_at is not null
    qualify row_number() over (partition by r.rider_id order by r.requested_at, r.id) = 1
),
per_month as (select month, count(*) as first_rides from firsts group by 1),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, coalesce(p.first_rides, 0) as first_rides
from months as m left join per_month as p on p.month = m.month
