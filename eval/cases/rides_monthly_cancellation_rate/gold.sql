with rides as (
    select cast(date_trunc('month', requested_at) as date) as month, lower(trim(status)) as status
    from rides.rides
    where lower(trim(status)) <> 'no_show'
),
per_month as (
    select month, count(*) filter (where status = 'cancelled') as cancelled, count(*) as rides from rides group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, p.cancelled / nullif(p.rides, 0) as cancellation_rate
from months as m left join per_month as p on p.month = m.month
