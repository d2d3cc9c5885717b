select b.city, count(*) as loans
from library.loans as l
left join library.branches as b on b.id = l.branch_id
where lower(trim(l.status)) <> 'void'
group by b.city
