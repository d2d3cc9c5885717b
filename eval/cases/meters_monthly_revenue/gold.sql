with per_month as (
    select cast(date_trunc('month', billed_at) as date) as month,
           sum(billed_amount * (1 - discount_percent / 100.0)) as revenue
    from meters.bills
    where lower(trim(status)) <> 'cancelled'
    group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, round(coalesce(p.revenue, 0), 2) as revenue
from months as m left join per_month as p on p.month = m.month
