{{
    config(
        indexes=[{'columns': ['symbol'], 'unique': true}],
    )
}}

with

stocks as (
    select * from {{ ref('dim_stocks') }}
),

daily_prices as (
    select * from {{ ref('fct_daily_prices') }}
),

latest_prices as (
    select
        daily_prices.symbol,
        daily_prices.date,
        daily_prices.close,
        daily_prices.adj_close,
        daily_prices.volume,
        daily_prices.adj_close - daily_prices.previous_adj_close as change_1d,
        daily_prices.return_1d
    from stocks
    inner join daily_prices
        on stocks.symbol = daily_prices.symbol
        and stocks.last_date = daily_prices.date
)

select * from latest_prices
