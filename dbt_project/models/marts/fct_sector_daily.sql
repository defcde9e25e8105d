{{
    config(
        materialized='incremental',
        unique_key=['sector', 'date'],
        indexes=[
            {'columns': ['sector', 'date'], 'unique': true},
            {'columns': ['date']},
        ],
    )
}}
{%- set window = date_window() %}

with

daily_prices as (
    select * from {{ ref('fct_daily_prices') }}
),

stocks as (
    select * from {{ ref('dim_stocks') }}
),

sector_members as (
    select
        daily_prices.date,
        daily_prices.symbol,
        coalesce(stocks.sector, 'Unclassified') as sector,
        daily_prices.return_1d,
        stocks.market_cap
    from daily_prices
    left join stocks on daily_prices.symbol = stocks.symbol
    {%- if window %}
    where daily_prices.date between {{ window.start }} and {{ window.end }}
    {%- endif %}
),

sector_daily as (
    select
        sector,
        date,
        count(*) as symbols_count,
        -- Sums in a fixed order, so the result does not depend on how a run reads the rows.
        avg(return_1d order by symbol) as mean_return_1d,
        count(*) filter (where return_1d > 0)::double precision / nullif(count(return_1d), 0) as advancers_share,
        sum(market_cap order by symbol) as total_market_cap
    from sector_members
    group by sector, date
)

select * from sector_daily
