select g.name as genre, count(*) as invoice_lines, sum(l.quantity * l.unit_price) as revenue
from chinook.chinook_invoiceline as l
join chinook.chinook_track as t on t.id = l.track
join chinook.chinook_genre as g on g.id = t.genre
group by g.name
