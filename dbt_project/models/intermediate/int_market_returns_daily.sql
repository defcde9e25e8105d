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
        avg(return_1d) as market_return_1d
    from adjusted_prices
    where
        return_1d is not null
        {%- if window %}
        and date between {{ window.start }} and {{ window.end }}
        {%- endif %}
    group by date
)

select * from market_returns
