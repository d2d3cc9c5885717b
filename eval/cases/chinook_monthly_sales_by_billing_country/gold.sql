with lines as (
    select invoice, sum(quantity * unit_price) as value
    from chinook.chinook_invoiceline
    group by invoice
),
per_month as (
    select cast(date_trunc('month', cast(i.invoicedate as timestamp)) as date) as month, i.billingcountry,
           count(*) as invoices, sum(l.value) as sales
    from chinook.chinook_invoice as i
    left join lines as l on l.invoice = i.id
    group by 1, 2
),
grid as (
    select m.month, c.billingcountry
    from (select distinct month from per_month) as m
    cross join (select distinct billingcountry from per_month) as c
)
select g.month, g.billingcountry, coalesce(p.invoices, 0) as invoices, coalesce(p.sales, 0) as sales
from grid as g
left join per_month as p on p.month = g.month and p.billingcountry = g.billingcountry
