-- New customers per day (latest load of each), every day from the first to the last signup.
with customers as (
    select * from raw_shop.customers
    qualify row_number() over (partition by id order by _loaded_at desc) = 1
),
per_day as (select cast(created_at as date) as day, count(*) as signups from customers group by 1),
days as (select cast(unnest(generate_series(min(day), max(day), interval 1 day)) as date) as day from per_day)
select d.day, coalesce(p.signups, 0) as signups from days as d left join per_day as p on p.day = d.day
