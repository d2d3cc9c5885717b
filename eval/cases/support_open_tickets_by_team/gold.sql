select tm.team_name, count(*) as open_tickets
from support.tickets as t
left join support.teams as tm on tm.id = t.team_id
where lower(trim(t.status)) = 'open'
group by tm.team_name
