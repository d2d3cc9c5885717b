select tm.team_name, round(avg(epoch(c.ended_at - c.started_at) / 60.0), 2) as average_call_minutes
from support.calls as c
left join support.agents as a on a.id = c.agent_id
left join support.teams as tm on tm.id = a.team_id
where c.started_at is not null and c.ended_at is not null
group by tm.team_name
