with per_month as (
    select cast(date_trunc('month', billed_at) as date) as month,
           count(*) filter (where lower(trim(status)) = 'cancelled') as cancelled, count(*) as bills
    from meters.bills
    group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, p.cancelled / nullif(p.bills, 0) as bill_cancellation_rate
from months as m left join per_month as p on p.month = m.month
