{# dataeng-crew's generic tests, used only where neither dbt nor a package the project installs has one.
   One file with the same content in every proposal, so two proposals never conflict on it. #}

{# sum(expression) over the model equals sum(compare_expression) over another model, within tolerance. #}
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

{# no two rows share the same combination of columns. #}
{% test crew_unique_combination(model, columns) %}

select {{ columns | join(', ') }}, count(*) as duplicate_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}

{# every non-null value of the column is >= min_value. #}
{% test crew_values_at_least(model, column_name, min_value) %}

select {{ column_name }} as failing_value
from {{ model }}
where {{ column_name }} < {{ min_value }}

{% endtest %}
