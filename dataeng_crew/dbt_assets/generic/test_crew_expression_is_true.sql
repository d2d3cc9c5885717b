{# dataeng-crew: a row-level invariant holds on every row (e.g. net = gross - discounts - refunds). #}
{% test crew_expression_is_true(model, expression) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
