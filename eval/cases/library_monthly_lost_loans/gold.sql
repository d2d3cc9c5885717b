with per_month as (
    select cast(date_trunc('month', loaned_at) as date) as month, count(*) as lost_loans
    from library.loans
    where lower(trim(status)) = 'lost'
    group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, coalesce(p.lost_loans, 0) as lost_loans
from months as m left join per_month as p on p.month = m.month
