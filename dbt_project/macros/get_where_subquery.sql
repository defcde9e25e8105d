{% macro get_where_subquery(relation) -%}
    {#- The relation a generic test reads: dbt's own (the test's `where` config), and in a run over a date
        window (vars start_date, end_date) only the window's dates of the models partitioned by it, the
        incremental ones. A daily build then tests the day it wrote instead of the whole history again; a
        run without the window tests every row. -#}
    {%- set where = config.get('where', '') -%}
    {%- set window = date_window() -%}
    {%- if execute and window is not none and is_date_partitioned(relation) -%}
        {%- set in_window = 'date between ' ~ window.start ~ ' and ' ~ window.end -%}
        {%- set where = in_window ~ (' and (' ~ where ~ ')' if where else '') -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}


{% macro is_date_partitioned(relation) -%}
    {#- Whether `relation` is an incremental model of this project, written by date window. -#}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model'
        and node.config.materialized == 'incremental'
        and node.schema == relation.schema
        and node.alias == relation.identifier -%}
        {%- do return(true) -%}
    {%- endfor -%}
    {%- do return(false) -%}
{%- endmacro %}
