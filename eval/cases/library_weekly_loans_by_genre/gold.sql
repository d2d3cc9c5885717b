with per_week as (
    select cast(date_trunc('week', l.loaned_at) as date) as week, g.genre, count(*) as loans
    from library.loans as l
    left join library.books as bk on bk.id = l.book_id
    left join library.genres as g on g.id = bk.genre_id
    where lower(trim(l.status)) <> 'void'
    group by 1, 2
),
weeks as (select cast(unnest(generate_series(min(week), max(week), interval 1 week)) as date) as week from per_week),
genres as (select distinct genre from per_week)
select w.week, g.genre, coalesce(p.loans, 0) as loans
from weeks as w
cross join genres as g
left join per_week as p on p.week = w.week and p.genre is not distinct from g.genre
