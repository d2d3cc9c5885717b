select g.genre, round(avg(epoch(l.returned_at - l.loaned_at) / 86400.0), 2) as average_loan_days
from library.loans as l
left join library.books as bk on bk.id = l.book_id
left join library.genres as g on g.id = bk.genre_id
where l.returned_at is not null and lower(trim(l.status)) <> 'void'
group by g.genre
