{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
{#- Every non-null value of the column lies within [min_value, max_value] (either bound optional);
    with inclusive=false the bounds themselves are out of range. -#}
{%- set lower = '>=' if inclusive else '>' -%}
{%- set upper = '<=' if inclusive else '<' -%}

select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and not (
    true
    {%- if min_value is not none %} and {{ column_name }} {{ lower }} {{ min_value }}{% endif %}
    {%- if max_value is not none %} and {{ column_name }} {{ upper }} {{ max_value }}{% endif %}
  )

{% endtest %}
