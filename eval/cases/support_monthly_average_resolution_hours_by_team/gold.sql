with per_cell as (
    select cast(date_trunc('month', t.opened_at) as date) as month, tm.team_name,
           avg(epoch(t.resolved_at - t.opened_at) / 3600.0) as average_resolution_hours
    from support.tickets as t
    left join support.teams as tm on tm.id = t.team_id
    where t.resolved_at is not null and t.opened_at is not null and lower(trim(t.status)) <> 'spam'
    group by 1, 2
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_cell
),
teams as (select distinct team_name from per_cell)
select m.month, tm.team_name, round(p.average_resolution_hours, 2) as average_resolution_hours
from months as m
cross join teams as tm
left join per_cell as p on p.month = m.month and p.team_name is not distinct from tm.team_name
