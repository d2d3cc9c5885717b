with valid as (
    select * from rides.rides
    where lower(trim(status)) not in ('cancelled', 'no_show') and requested_at is not null
),
per_month as (
    select cast(date_trunc('month', requested_at) as date) as month,
           avg(epoch(pickup_at - requested_at) / 60.0) as average_wait_minutes
    from valid
    group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, round(p.average_wait_minutes, 2) as average_wait_minutes
from months as m left join per_month as p on p.month = m.month
