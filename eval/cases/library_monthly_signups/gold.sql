with per_month as (
    select cast(date_trunc('month', registered_on) as date) as month, count(*) as signups
    from library.members group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, coalesce(p.signups, 0) as signups
from months as m left join per_month as p on p.month = m.month
