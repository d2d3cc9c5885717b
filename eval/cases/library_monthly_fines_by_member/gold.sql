select
    cast(date_trunc('month', f.issued_at) as date) as month,
    l.member_id,
    count(*) as fines,
    sum(cast(f.amount as decimal(12, 2))) as amount
from library.fines as f
left join library.loans as l on l.id = f.loan_id
where not f.is_test
group by 1, 2
