with per_month as (
    select cast(date_trunc('month', opened_at) as date) as month, count(distinct requester_email) as unique_requesters
    from support.tickets
    where lower(trim(status)) <> 'spam'
    group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, coalesce(p.unique_requesters, 0) as unique_requesters
from months as m left join per_month as p on p.month = m.month
