with per_week as (
    select cast(date_trunc('week', returned_at) as date) as week, count(*) as returns
    from library.loans
    where returned_at is not null and lower(trim(status)) <> 'void'
    group by 1
),
weeks as (select cast(unnest(generate_series(min(week), max(week), interval 1 week)) as date) as week from per_week)
select w.week, coalesce(p.returns, 0) as returns
from weeks as w left join per_week as p on p.week = w.week
