with per_week as (
    select cast(date_trunc('week', opened_at) as date) as week, lower(trim(prio)) as priority, count(*) as tickets
    from support.tickets
    where lower(trim(status)) <> 'spam'
    group by 1, 2
),
weeks as (select cast(unnest(generate_series(min(week), max(week), interval 1 week)) as date) as week from per_week),
priorities as (select distinct priority from per_week)
select w.week, pr.priority, coalesce(p.tickets, 0) as tickets
from weeks as w
cross join priorities as pr
left join per_week as p on p.week = w.week and p.priority is not distinct from pr.priority
