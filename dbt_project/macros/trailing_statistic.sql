{% macro trailing_statistic(aggregate, arguments, days, gathered) %}
    {#- A statistic of a row's last `days` trading days, the row included, or with aggregate 'lag' the value
        `days` trading days before it. Two forms of the same value:
        - over windows named last_<days>_days and symbol_history, for a sweep through each symbol's rows;
        - gathered: aggregating a row's lookback (its earlier rows, `rows_back` trading days before it), for
          runs writing a few dates, where sweeping a year of history to write a day would cost more.
        Averages and deviations aggregate numeric inputs, returned as double precision: over a window they then
        remove the row leaving the frame instead of re-reading the frame, which keeps long windows linear, and
        their sums are exact, so both forms agree to the last bit. Double precision aggregates without that
        removal (regr_slope, corr) read their rows oldest first in both forms, for the same bits. -#}
    {%- set is_numeric = aggregate in ['avg', 'stddev_pop', 'stddev_samp'] -%}
    {%- if aggregate == 'lag' and gathered -%}
        min({{ arguments }}) filter (where rows_back = {{ days }})
    {%- elif aggregate == 'lag' -%}
        lag({{ arguments }}, {{ days }}) over symbol_history
    {%- elif gathered -%}
        {{ '(' if is_numeric }}{{ aggregate }}({{ arguments }}{{ '' if is_numeric else ' order by date' }})
            filter (where rows_back < {{ days }}){{ ')::double precision' if is_numeric }}
    {%- else -%}
        {{ '(' if is_numeric }}{{ aggregate }}({{ arguments }}) over last_{{ days }}_days
        {{- ')::double precision' if is_numeric }}
    {%- endif -%}
{% endmacro %}
