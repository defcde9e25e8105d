{% macro generate_schema_name(custom_schema_name, node) -%}
    {#- Models land in the schema their folder sets (staging, intermediate, marts) as named, not prefixed with
        the target schema; anything without one (tests, seeds) uses the target schema. -#}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
