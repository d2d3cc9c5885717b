select m.region, round(sum(b.billed_amount), 2) as total_billed_amount
from meters.bills as b
left join meters.meters as m on m.id = b.meter_id
where lower(trim(b.status)) <> 'cancelled'
group by m.region
