{# dataeng-crew: every non-null value of the column is >= min_value (numeric range, lower bound). #}
{% test crew_values_at_least(model, column_name, min_value) %}

select {{ column_name }} as failing_value
from {{ model }}
where {{ column_name }} < {{ min_value }}

{% endtest %}
