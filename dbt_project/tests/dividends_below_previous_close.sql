{{ config(severity='warn') }}
-- A cash dividend must be below the previous close for the dividend adjustment to exist; int_prices_adjusted
-- applies only the split of an action that breaks this (provider data errors, e.g. spin-offs booked as
-- dividends).

with

daily_prices as (
    select
        symbol,
        date,
        lag(close) over (partition by symbol order by date) as previous_close
    from {{ ref('stg_market__daily_prices') }}
),

corporate_actions as (
    select * from {{ ref('stg_market__corporate_actions') }}
)

select
    corporate_actions.symbol,
    corporate_actions.ex_date,
    corporate_actions.cash_dividend,
    daily_prices.previous_close
from corporate_actions
inner join daily_prices
    on corporate_actions.symbol = daily_prices.symbol
    and corporate_actions.ex_date = daily_prices.date
where corporate_actions.cash_dividend >= daily_prices.previous_close
