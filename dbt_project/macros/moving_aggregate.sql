{% macro moving_aggregate(aggregate, numeric_column, window_name) -%}
    {#- aggregate(numeric_column) over a sliding window, returned as double precision. Numeric aggregates
        (avg, sum, stddev, var) remove the row leaving the frame instead of re-reading the whole frame as the
        double precision ones do, which keeps long windows linear; their sums are exact, so the result does
        not depend on where in the history a run starts. -#}
    ({{ aggregate }}({{ numeric_column }}) over {{ window_name }})::double precision
{%- endmacro %}
