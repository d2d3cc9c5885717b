{# dataeng-crew: no two rows share the same combination of columns (e.g. key + load time in raw data). #}
{% test crew_unique_combination(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as duplicate_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
