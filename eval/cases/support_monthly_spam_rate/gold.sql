with per_month as (
    select cast(date_trunc('month', opened_at) as date) as month,
           count(*) filter (where lower(trim(status)) = 'spam') as spam, count(*) as tickets
    from support.tickets
    group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, p.spam / nullif(p.tickets, 0) as spam_rate
from months as m left join per_month as p on p.month = m.month
