{# dataeng-crew: sum(expression) over the model equals sum(compare_expression) over another model
   (optionally filtered), within tolerance. Used to prove a mart's totals against staging. #}
{% test crew_reconciles_with(model, expression, to, compare_expression, compare_where=none, tolerance=0.005) %}

with this_total as (

    select coalesce(sum({{ expression }}), 0) as total from {{ model }}

),

other_total as (

    select coalesce(sum({{ compare_expression }}), 0) as total
    from {{ to }}
    {%- if compare_where %}
    where {{ compare_where }}
    {%- endif %}

)

select
    this_total.total as model_total,
    other_total.total as compared_total
from this_total
cross join other_total
where abs(this_total.total - other_total.total) > {{ tolerance }}

{% endtest %}
