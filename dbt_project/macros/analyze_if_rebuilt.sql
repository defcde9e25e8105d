{% macro analyze_if_rebuilt() %}
    {#- Fresh planner statistics for a table built whole, which the next models and the API's queries plan with.
        An incremental run for a window of dates changes a sliver of the rows, and autovacuum's analyze keeps
        up with that; analyzing a big table costs more than such a run's query. -#}
    {%- if model.config.materialized != 'incremental' or date_window() is none %}
    analyze {{ this }}
    {%- endif %}
{% endmacro %}
