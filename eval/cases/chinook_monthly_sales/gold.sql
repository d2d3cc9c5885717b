with lines as (
    select invoice, sum(quantity * unit_price) as value
    from chinook.chinook_invoiceline
    group by invoice
)
select cast(date_trunc('month', cast(i.invoicedate as timestamp)) as date) as month,
       count(*) as invoices,
       count(distinct i.customer) as customers,
       sum(coalesce(l.value, 0)) as sales
from chinook.chinook_invoice as i
left join lines as l on l.invoice = i.id
group by 1
