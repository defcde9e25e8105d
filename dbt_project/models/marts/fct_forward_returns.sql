{{
    config(
        materialized='incremental',
        unique_key=['symbol', 'date'],
        indexes=[
            {'columns': ['symbol', 'date'], 'unique': true},
            {'columns': ['date']},
        ],
    )
}}
{%- set window = date_window() %}
{%- set horizons = [1, 5, 21] %}

with

adjusted_prices as (
    select * from {{ ref('int_prices_adjusted') }}
),

{%- if window %}

scope as (
    {{ incremental_scope(
        ref('int_prices_adjusted'), window, trading_days_before=horizons[-1], trading_days_after=horizons[-1]
    ) }}
),

-- A new date completes the forward returns of the dates up to 21 trading days before it, so those are
-- rewritten too, for every symbol (excess returns are cross-sectional); reading runs on 21 trading days
-- past the window.
dates_in_scope as (
    select
        min(read_from) as rewrite_from,
        max(read_to) as read_to
    from scope
),
{%- endif %}

prices_in_scope as (
    select
        adjusted_prices.symbol,
        adjusted_prices.date,
        adjusted_prices.adj_close
    from adjusted_prices
    {%- if window %}
    cross join dates_in_scope
    where adjusted_prices.date between dates_in_scope.rewrite_from and dates_in_scope.read_to
    {%- endif %}
),

forward_returns as (
    select
        symbol,
        date,
        {%- for horizon in horizons %}
        lead(adj_close, {{ horizon }}) over symbol_history / adj_close - 1 as forward_return_{{ horizon }}d
        {{- ',' if not loop.last }}
        {%- endfor %}
    from prices_in_scope
    window symbol_history as (partition by symbol order by date)
),

excess_returns as (
    select
        *,
        {%- for horizon in horizons %}
        forward_return_{{ horizon }}d - avg(forward_return_{{ horizon }}d) over same_date
            as excess_forward_return_{{ horizon }}d
        {{- ',' if not loop.last }}
        {%- endfor %}
    from forward_returns
    {%- if window %}
    where date between (select rewrite_from from dates_in_scope) and {{ window.end }}
    {%- endif %}
    window same_date as (partition by date)
)

select * from excess_returns
