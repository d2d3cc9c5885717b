select id as payment_id, order_id, payment_method, amount / 100.0 as amount_dollars
from raw_jaffle_shop_classic.raw_payments
