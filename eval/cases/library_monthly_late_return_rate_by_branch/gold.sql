with returns as (
    select cast(date_trunc('month', l.returned_at) as date) as month, b.branch_name, l.returned_at > l.due_at as late
    from library.loans as l
    left join library.branches as b on b.id = l.branch_id
    where l.returned_at is not null and lower(trim(l.status)) not in ('void')
),
per_cell as (
    select month, branch_name, count(*) filter (where late) as late_returns, count(*) as returns
    from returns group by 1, 2
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_cell
),
branches as (select distinct branch_name from per_cell)
select m.month, b.branch_name, p.late_returns / nullif(p.returns, 0) as late_return_rate
from months as m
cross join branches as b
left join per_cell as p on p.month = m.month and p.branch_name is not distinct from b.branch_name
