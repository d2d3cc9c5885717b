select m.region, round(avg(date_diff('day', b.billed_at, b.paid_at)), 2) as average_days_to_pay
from meters.bills as b
left join meters.meters as m on m.id = b.meter_id
where b.paid_at is not null and b.billed_at is not null and lower(trim(b.status)) <> 'cancelled'
group by m.region
