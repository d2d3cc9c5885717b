-- dbt Labs' classic jaffle-shop models/customers.sql, written over the raw CSVs (amounts in cents → dollars).
-- One deviation, on purpose: customers without orders get 0 orders and 0 lifetime value (classic: null).
-- The names are PII: the governance policy hashes them in marts, so the gold hashes them too.
with customers as (
    select id as customer_id, first_name, last_name from raw_jaffle_shop_classic.raw_customers
),
orders as (
    select id as order_id, user_id as customer_id, order_date, status from raw_jaffle_shop_classic.raw_orders
),
payments as (
    select id as payment_id, order_id, payment_method, amount / 100.0 as amount
    from raw_jaffle_shop_classic.raw_payments
),
customer_orders as (
    select
        customer_id,
        min(order_date) as first_order,
        max(order_date) as most_recent_order,
        count(order_id) as number_of_orders
    from orders
    group by customer_id
),
customer_payments as (
    select orders.customer_id, sum(amount) as total_amount
    from payments
    left join orders on payments.order_id = orders.order_id
    group by orders.customer_id
)
select
    customers.customer_id,
    sha256(getvariable('pii_key') || customers.first_name) as first_name_hash,
    sha256(getvariable('pii_key') || customers.last_name) as last_name_hash,
    customer_orders.first_order,
    customer_orders.most_recent_order,
    coalesce(customer_orders.number_of_orders, 0) as number_of_orders,
    coalesce(customer_payments.total_amount, 0) as customer_lifetime_value
from customers
left join customer_orders on customers.customer_id = customer_orders.customer_id
left join customer_payments on customers.customer_id = customer_payments.customer_id
