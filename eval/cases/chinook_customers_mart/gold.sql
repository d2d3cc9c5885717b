with lines as (
    select invoice, sum(quantity * unit_price) as value
    from chinook.chinook_invoiceline
    group by invoice
)
select c.id as customer_id,
       cast(min(cast(i.invoicedate as timestamp)) as date) as first_order_date,
       cast(max(cast(i.invoicedate as timestamp)) as date) as most_recent_order_date,
       count(i.id) as number_of_orders,
       coalesce(sum(l.value), 0) as lifetime_value
from chinook.chinook_customer as c
left join chinook.chinook_invoice as i on i.customer = c.id
left join lines as l on l.invoice = i.id
group by c.id
