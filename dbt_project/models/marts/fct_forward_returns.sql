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
        adjusted_prices.return_1d
    from adjusted_prices
    {%- if window %}
    cross join dates_in_scope
    where adjusted_prices.date between dates_in_scope.rewrite_from and dates_in_scope.read_to
    {%- endif %}
),

-- Compounded from the daily returns, which a later split or dividend leaves as they are (a ratio of
-- adjusted closes would move in the last digits when one rescales them); null until all the days exist.
forward_returns as (
    select
        symbol,
        date,
        {%- for horizon in horizons %}
        case
            when count(return_1d) over next_{{ horizon }}_days = {{ horizon }}
                then {{ target.schema }}.product(1 + return_1d) over next_{{ horizon }}_days - 1
        end as forward_return_{{ horizon }}d
        {{- ',' if not loop.last }}
        {%- endfor %}
    from prices_in_scope
    window
        symbol_history as (partition by symbol order by date),
        {%- for horizon in horizons %}
        next_{{ horizon }}_days as (symbol_history rows between 1 following and {{ horizon }} following)
        {{- ',' if not loop.last }}
        {%- endfor %}
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
    -- Summed in a fixed order, so the mean does not depend on how a run reads the rows.
    window same_date as (
        partition by date order by symbol rows between unbounded preceding and unbounded following
    )
)

select * from excess_returns
