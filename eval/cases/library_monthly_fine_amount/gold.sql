with per_month as (
    select cast(date_trunc('month', issued_at) as date) as month, sum(cast(amount as decimal(12, 2))) as amount
    from library.fines
    where not is_test
    group by 1
),
months as (
    select cast(unnest(generate_series(min(month), max(month), interval 1 month)) as date) as month from per_month
)
select m.month, round(coalesce(p.amount, 0), 2) as fine_amount
from months as m left join per_month as p on p.month = m.month
