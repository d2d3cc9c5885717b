-- Latest load of every order, statuses normalised, money in dollars, text timestamps parsed.
select id, lower(trim(financial_status)) as status, subtotal_price / 100.0 as subtotal,
       total_discounts / 100.0 as discounts,
       coalesce(try_strptime(created_at, '%Y-%m-%d %H:%M:%S'), try_strptime(created_at, '%Y-%m-%dT%H:%M:%SZ')) as ts
from raw_shop.orders
qualify row_number() over (partition by id order by _loaded_at desc) = 1
