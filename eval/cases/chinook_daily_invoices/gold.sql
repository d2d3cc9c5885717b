with per_day as (
    select cast(cast(invoicedate as timestamp) as date) as day, count(*) as invoices, sum(total) as total
    from chinook.chinook_invoice
    group by 1
),
days as (
    select cast(unnest(generate_series(min(day), max(day), interval 1 day)) as date) as day from per_day
)
select d.day, coalesce(p.invoices, 0) as invoices, coalesce(p.total, 0) as total
from days as d
left join per_day as p on p.day = d.day
