{# dataeng-crew: the model's row count lies in [min_rows, max_rows] (row-count anomaly bound). #}
{% test crew_row_count_between(model, min_rows, max_rows=none) %}

with counted as (

    select count(*) as row_count from {{ model }}

)

select row_count
from counted
where row_count < {{ min_rows }}
{%- if max_rows is not none %}
    or row_count > {{ max_rows }}
{%- endif %}

{% endtest %}
