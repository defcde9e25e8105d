{% macro percent_rank_among(value, negated_values) %}
    {#- What percent_rank() ordered by the value gives `value` among a set of values, given the set negated and
        sorted ascending (`array_agg(-x order by -x)`): width_bucket counts the values >= `value` by binary
        search, and the rest rank below it. (rank - 1) / (count - 1); 0 for a lone value, null for null. The
        values are never NaN (PostgreSQL raises on 0 / 0), whose order negation would not reverse. -#}
    case
        when {{ value }} is not null
            then coalesce(
                (cardinality({{ negated_values }}) - width_bucket(-{{ value }}, {{ negated_values }}))
                ::double precision / nullif(cardinality({{ negated_values }}) - 1, 0),
                0
            )
    end
{%- endmacro %}
