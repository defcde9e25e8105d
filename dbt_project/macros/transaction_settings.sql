{% macro transaction_settings() %}
    {#- Settings for a model's transaction (its pre-hook):
        - memory for its sorts and hash tables (work_mem, per sort or hash node), so that most stay off disk;
        - no JIT compilation: the time goes to window functions and numeric aggregates, which JIT does not
          speed up, while compiling these large queries takes longer than a one-day run's query itself. -#}
    set local work_mem = '64MB';
    set local jit = off;
{%- endmacro %}
