with per_month as (
    select cast(date_trunc('month', loaned_at) as date) as month, count(distinct member_id) as active_members
    from library.loans
    where lower(trim(status)) <> 'void'
    group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, coalesce(p.active_members, 0) as active_members
from months as m left join per_month as p on p.month = m.month
