{{
    config(
        unique_key=['symbol', 'date'],
        indexes=[
            {'columns': ['symbol', 'date'], 'unique': true},
            {'columns': ['date']},
        ],
    )
}}
{%- set window = date_window() %}

with

daily_prices as (
    select * from {{ ref('stg_market__daily_prices') }}
),

corporate_actions as (
    select * from {{ ref('stg_market__corporate_actions') }}
),

{%- if window %}

scope as (
    {{ incremental_scope(
        ref('stg_market__daily_prices'), window, trading_days_before=1, restate_history=is_incremental()
    ) }}
),
{%- endif %}

-- The bars to adjust: the window's, each symbol's last one before it (for the previous close), the whole
-- history of restated symbols, and the bars after the window (a backfill's actions need their closes).
bars_in_scope as (
    {%- if window %}
    select bars.*
    from scope
    -- Each symbol's bars as one range of the (symbol, date) index: offset 0 keeps the planner from turning this
    -- into a scan of every bar.
    cross join lateral (
        select * from daily_prices
        where daily_prices.symbol = scope.symbol and daily_prices.date >= scope.read_from
        offset 0
    ) as bars
    {%- else %}
    select * from daily_prices
    {%- endif %}
),

-- Each symbol's bars and corporate actions on one time line. On an ex-date the action comes first: that
-- day's bar already trades without the dividend and after the split.
timeline as (
    select
        symbol,
        date,
        1 as event_order,
        close,
        null::double precision as split_ratio,
        null::double precision as cash_dividend
    from bars_in_scope
    union all
    select
        symbol,
        ex_date as date,
        0 as event_order,
        null::double precision as close,
        split_ratio,
        cash_dividend
    from corporate_actions
),

-- Bars counted along the time line: an action shares bars_before with the first bar on or after its ex-date
-- (whose close its dividend is measured against).
timeline_counted as (
    select
        *,
        count(close) over before_event as bars_before
    from timeline
    window before_event as (
        partition by symbol order by date, event_order rows between unbounded preceding and 1 preceding
    )
),

-- What each action multiplies the prices before its ex-date by: close / (close + cash_dividend) on the
-- ex-date's close, then divided by the split ratio, so that the adjusted series earns exactly the total
-- return (close + dividend) / previous close on the ex-date (Alpha Vantage's convention too). Until the
-- ex-date's bar is loaded only the split applies. Null for bars.
action_factors as (
    select
        symbol,
        date,
        event_order,
        bars_before,
        split_ratio,
        coalesce(ex_date_close / (ex_date_close + cash_dividend), 1) / split_ratio as price_factor
    from (
        select
            *,
            max(close) over (partition by symbol, bars_before) as ex_date_close
        from timeline_counted
    ) as with_ex_date_close
),

-- A bar's factors: the products over every action after it on the time line, and over the actions going ex
-- since the previous bar (what the previous close is adjusted by for the day's return).
bar_factors as (
    select
        symbol,
        date,
        event_order,
        coalesce({{ target.schema }}.product(price_factor) over later_events, 1) as price_adjustment_factor,
        coalesce({{ target.schema }}.product(split_ratio) over later_events, 1) as volume_adjustment_factor,
        coalesce({{ target.schema }}.product(price_factor) over (partition by symbol, bars_before), 1)
            as since_previous_bar_factor
    from action_factors
    window later_events as (
        partition by symbol order by date desc, event_order desc
        rows between unbounded preceding and 1 preceding
    )
),

adjusted_prices as (
    select
        bars_in_scope.symbol,
        bars_in_scope.date,
        bars_in_scope.open,
        bars_in_scope.high,
        bars_in_scope.low,
        bars_in_scope.close,
        bars_in_scope.volume,
        bar_factors.price_adjustment_factor,
        bar_factors.volume_adjustment_factor,
        bar_factors.since_previous_bar_factor,
        bars_in_scope.open * bar_factors.price_adjustment_factor as adj_open,
        bars_in_scope.high * bar_factors.price_adjustment_factor as adj_high,
        bars_in_scope.low * bar_factors.price_adjustment_factor as adj_low,
        bars_in_scope.close * bar_factors.price_adjustment_factor as adj_close,
        bars_in_scope.volume * bar_factors.volume_adjustment_factor as adj_volume,
        bars_in_scope.provider
    from bars_in_scope
    inner join bar_factors
        on bars_in_scope.symbol = bar_factors.symbol
        and bars_in_scope.date = bar_factors.date
        and bar_factors.event_order = 1
),

-- The day's return from the as-traded closes and the day's actions, adj_close / previous adj_close - 1 written
-- so that it does not depend on later actions: a new split or dividend rescales the adjusted prices but
-- leaves every earlier return exactly as it was.
with_returns as (
    select
        symbol,
        date,
        open,
        high,
        low,
        close,
        volume,
        price_adjustment_factor,
        volume_adjustment_factor,
        adj_open,
        adj_high,
        adj_low,
        adj_close,
        adj_volume,
        provider,
        lag(adj_close) over symbol_history as previous_adj_close,
        close / (lag(close) over symbol_history * since_previous_bar_factor) - 1 as return_1d
    from adjusted_prices
    window symbol_history as (partition by symbol order by date)
)

select * from with_returns
{%- if window %}
where {{ in_written_rows(window) }}
{%- endif %}
