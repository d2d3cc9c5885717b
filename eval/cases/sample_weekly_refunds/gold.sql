-- Refunds per ISO week (latest load of each refund), count and dollars, every week in range.
with refunds as (
    select * from raw_shop.refunds
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
per_week as (
    select cast(date_trunc('week', created_at) as date) as week, count(*) as refunds, sum(amount) / 100.0 as dollars
    from refunds group by 1
),
weeks as (select cast(unnest(generate_series(min(week), max(week), interval 7 day)) as date) as week from per_week)
select w.week, coalesce(p.refunds, 0) as refunds, coalesce(p.dollars, 0) as dollars
from weeks as w left join per_week as p on p.week = w.week
