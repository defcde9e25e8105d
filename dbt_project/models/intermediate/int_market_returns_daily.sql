{{
    config(
        unique_key=['date'],
        indexes=[{'columns': ['date'], 'unique': true}],
    )
}}
{%- set window = date_window() %}

with

adjusted_prices as (
    select * from {{ ref('int_prices_adjusted') }}
),

market_returns as (
    select
        date,
        count(*) as symbols_count,
        -- Summed in a fixed order, so the result does not depend on how a run reads the rows.
        avg(return_1d order by symbol) as market_return_1d
    from adjusted_prices
    where
        return_1d is not null
        {%- if window %}
        and date between {{ window.start }} and {{ window.end }}
        {%- endif %}
    group by date
)

select * from market_returns
