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
-- depends_on: {{ ref('stg_market__corporate_actions') }}
{%- set window = date_window() %}

with

adjusted_prices as (
    select * from {{ ref('int_prices_adjusted') }}
),

{%- if window %}

scope as (
    {{ incremental_scope(ref('int_prices_adjusted'), window, restate_history=is_incremental()) }}
),
{%- endif %}

daily_prices as (
    select
        symbol,
        date,
        open,
        high,
        low,
        close,
        volume,
        adj_open,
        adj_high,
        adj_low,
        adj_close,
        adj_volume,
        previous_adj_close,
        return_1d,
        provider
    from adjusted_prices
    {%- if window %}
    where {{ in_written_rows(window) }}
    {%- endif %}
)

select * from daily_prices
