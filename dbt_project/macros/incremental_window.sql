{% macro date_window() %}
    {#- The dates an incremental run writes, from vars start_date and end_date ('YYYY-MM-DD', inclusive), as
        SQL date literals {'start': ..., 'end': ...}, with its length in 'calendar_days'; none when both vars are
        unset (every date is written). -#}
    {%- set start_date, end_date = var('start_date'), var('end_date') -%}
    {%- if start_date is none and end_date is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if start_date is none or end_date is none -%}
        {{ exceptions.raise_compiler_error("Set both vars start_date and end_date (YYYY-MM-DD), or neither.") }}
    {%- endif -%}
    {%- set bounds = [] -%}
    {%- for value in [start_date, end_date] -%}
        {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', value | string) -%}
            {{ exceptions.raise_compiler_error("start_date and end_date must be YYYY-MM-DD, got '" ~ value ~ "'.") }}
        {%- endif -%}
        {%- do bounds.append(modules.datetime.date.fromisoformat(value | string)) -%}
    {%- endfor -%}
    {%- if bounds[0] > bounds[1] -%}
        {{ exceptions.raise_compiler_error("start_date " ~ bounds[0] ~ " is after end_date " ~ bounds[1] ~ ".") }}
    {%- endif -%}
    {{ return({
        'start': "date '" ~ bounds[0] ~ "'",
        'end': "date '" ~ bounds[1] ~ "'",
        'calendar_days': (bounds[1] - bounds[0]).days + 1,
    }) }}
{% endmacro %}


{% macro incremental_scope(relation, window, trading_days_before=0, trading_days_after=0, restate_history=false) %}
    {#- One row per symbol an incremental run over `window` touches, with the dates it reads from `relation`
        (a symbol x date table): read_from .. read_to.
        - Symbols trading inside the window read from `trading_days_before` of their own trading days before
          it (the history their window functions need) to `trading_days_after` trading days after it.
        - With restate_history, symbols with a split or dividend going ex inside the window read their whole
          history (restates_history): the action rescales every earlier adjusted price, so the models
          rewrite those rows too.
        Bounds are looked up through the (symbol, date) index, one symbol at a time. -#}
    with scope_symbols as (
        select symbol, bool_or(restates_history) as restates_history
        from (
            select distinct symbol, false as restates_history
            from {{ relation }}
            where date between {{ window.start }} and {{ window.end }}
            {%- if restate_history %}
            union all
            select distinct symbol, true as restates_history
            from {{ ref('stg_market__corporate_actions') }}
            where ex_date between {{ window.start }} and {{ window.end }}
            {%- endif %}
        ) as touched
        group by symbol
    )

    select
        scope_symbols.symbol,
        scope_symbols.restates_history,
        case
            when scope_symbols.restates_history then '-infinity'::date
            else coalesce(history.read_from, {{ window.start }})
        end as read_from,
        coalesce(future.read_to, {{ window.end }}) as read_to
    from scope_symbols
    cross join lateral (
        select min(earlier.date) as read_from
        from (
            select date from {{ relation }}
            where symbol = scope_symbols.symbol and date < {{ window.start }}
            order by date desc
            limit {{ trading_days_before }}
        ) as earlier
    ) as history
    cross join lateral (
        select max(later.date) as read_to
        from (
            select date from {{ relation }}
            where symbol = scope_symbols.symbol and date > {{ window.end }}
            order by date
            limit {{ trading_days_after }}
        ) as later
    ) as future
{% endmacro %}


{% macro in_written_rows(window) %}
    {#- The rows an incremental run writes, as a filter on `symbol` and `date`: dates inside the window, and
        the whole history of the symbols the CTE `scope` (incremental_scope) restates. The symbols as an array
        (`= any(array(...))`, not `in (select ...)`), so that a filter on a table can combine its date and
        symbol indexes. -#}
    date between {{ window.start }} and {{ window.end }}
    or symbol = any(array(select symbol from scope where restates_history))
{% endmacro %}
