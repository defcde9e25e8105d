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
{%- set restates_history = window is not none and is_incremental() %}
{#- The longest look-back a feature needs: 252 trading days (a year) before the date. -#}
{%- set longest_window = 252 %}
{#- Ranked across symbols per date; all scale-free (see restated_history). -#}
{%- set ranked_features = [
    'return_1d', 'return_5d', 'return_21d', 'return_63d', 'return_252d', 'momentum_12_1',
    'volatility_21d', 'volatility_63d', 'close_to_sma_20', 'close_to_sma_50', 'close_to_sma_200',
    'rsi_14', 'bollinger_percent_b', 'volume_zscore_20d', 'distance_from_52w_high', 'distance_from_52w_low',
    'beta_63d',
] %}

with

adjusted_prices as (
    select * from {{ ref('int_prices_adjusted') }}
),

smoothed_prices as (
    select * from {{ ref('int_prices_smoothed') }}
),

market_returns as (
    select * from {{ ref('int_market_returns_daily') }}
),

{%- if window %}

scope as (
    {{ incremental_scope(
        ref('int_prices_adjusted'), window, trading_days_before=longest_window, restate_history=is_incremental()
    ) }}
),
{%- endif %}

-- The window's rows with the year of history before them; history_days counts each symbol's rows up to
-- the date, so a feature is null until its window is full. The scope reads a full year, or the symbol's
-- whole history when it is shorter, so the count is exact wherever it decides.
prices_in_scope as (
    select
        adjusted_prices.symbol,
        adjusted_prices.date,
        adjusted_prices.adj_high,
        adjusted_prices.adj_low,
        adjusted_prices.adj_close,
        adjusted_prices.adj_volume,
        adjusted_prices.return_1d,
        ln(adjusted_prices.adj_close / adjusted_prices.previous_adj_close) as log_return_1d,
        market_returns.market_return_1d,
        row_number() over (partition by adjusted_prices.symbol order by adjusted_prices.date) as history_days
    from adjusted_prices
    {%- if window %}
    inner join scope
        on adjusted_prices.symbol = scope.symbol
        and adjusted_prices.date between scope.read_from and scope.read_to
    {%- endif %}
    left join market_returns on adjusted_prices.date = market_returns.date
),

rolling_features as (
    select
        symbol,
        date,
        history_days,
        adj_close,
        return_1d,
        {%- for days in [5, 21, 63, 252] %}
        adj_close / lag(adj_close, {{ days }}) over symbol_history - 1 as return_{{ days }}d,
        {%- endfor %}
        log_return_1d,
        lag(adj_close, 21) over symbol_history / lag(adj_close, 252) over symbol_history - 1 as momentum_12_1,
        case
            when history_days > 21 then sqrt(252) * stddev_samp(log_return_1d) over last_21_days
        end as volatility_21d,
        case
            when history_days > 63 then sqrt(252) * stddev_samp(log_return_1d) over last_63_days
        end as volatility_63d,
        {%- for days in [5, 10, 20, 50, 200] %}
        case
            when history_days >= {{ days }} then adj_close / avg(adj_close) over last_{{ days }}_days
        end as close_to_sma_{{ days }},
        {%- endfor %}
        case
            when history_days >= 20
                then (adj_close - avg(adj_close) over last_20_days)
                / nullif(4 * stddev_pop(adj_close) over last_20_days, 0) + 0.5
        end as bollinger_percent_b,
        case
            when history_days >= 20
                then (adj_volume - avg(adj_volume) over last_20_days)
                / nullif(stddev_samp(adj_volume) over last_20_days, 0)
        end as volume_zscore_20d,
        case
            when history_days >= 252 then adj_close / max(adj_high) over last_252_days - 1
        end as distance_from_52w_high,
        case
            when history_days >= 252 then adj_close / min(adj_low) over last_252_days - 1
        end as distance_from_52w_low,
        case
            when history_days > 63 then regr_slope(return_1d, market_return_1d) over last_63_days
        end as beta_63d,
        case
            when history_days > 63 then corr(return_1d, market_return_1d) over last_63_days
        end as correlation_63d
    from prices_in_scope
    window
        symbol_history as (partition by symbol order by date),
        {%- for days in [5, 10, 20, 21, 50, 63, 200, 252] %}
        last_{{ days }}_days as (symbol_history rows between {{ days - 1 }} preceding and current row)
        {{- ',' if not loop.last }}
        {%- endfor %}
),

features as (
    select
        rolling_features.symbol,
        rolling_features.date,
        rolling_features.return_1d,
        rolling_features.return_5d,
        rolling_features.return_21d,
        rolling_features.return_63d,
        rolling_features.return_252d,
        rolling_features.log_return_1d,
        rolling_features.momentum_12_1,
        rolling_features.volatility_21d,
        rolling_features.volatility_63d,
        rolling_features.close_to_sma_5,
        rolling_features.close_to_sma_10,
        rolling_features.close_to_sma_20,
        rolling_features.close_to_sma_50,
        rolling_features.close_to_sma_200,
        case
            when rolling_features.history_days >= 26 then smoothed_prices.ema_12 - smoothed_prices.ema_26
        end as macd,
        case
            when rolling_features.history_days >= 26 + 9 - 1 then smoothed_prices.macd_signal
        end as macd_signal,
        100 * smoothed_prices.avg_gain_14
        / nullif(smoothed_prices.avg_gain_14 + smoothed_prices.avg_loss_14, 0) as rsi_14,
        rolling_features.bollinger_percent_b,
        smoothed_prices.atr_14,
        rolling_features.volume_zscore_20d,
        rolling_features.distance_from_52w_high,
        rolling_features.distance_from_52w_low,
        rolling_features.beta_63d,
        rolling_features.correlation_63d
    from rolling_features
    inner join smoothed_prices
        on rolling_features.symbol = smoothed_prices.symbol
        and rolling_features.date = smoothed_prices.date
    {%- if window %}
    where {{ in_written_rows(window, relation='rolling_features') }}
    {%- endif %}
),

ranked as (
    select
        *,
        {%- for feature in ranked_features %}
        case
            when {{ feature }} is not null
                then percent_rank() over (partition by date, {{ feature }} is null order by {{ feature }})
        end as {{ feature }}_rank
        {{- ',' if not loop.last }}
        {%- endfor %}
    from features
    {%- if restates_history %}
    where date between {{ window.start }} and {{ window.end }}
    {%- endif %}
)

{%- if restates_history %},

-- Rows before the window of symbols a new split or dividend restated: their adjusted prices were all
-- rescaled by the same factor, which changes the price-level features (macd, macd_signal, atr_14) but none
-- of the ranked ones, so the ranks stored for them still hold.
restated_history as (
    select
        features.*,
        {%- for feature in ranked_features %}
        stored.{{ feature }}_rank
        {{- ',' if not loop.last }}
        {%- endfor %}
    from features
    inner join {{ this }} as stored
        on features.symbol = stored.symbol
        and features.date = stored.date
    where features.date < {{ window.start }}
)

select * from ranked
union all
select * from restated_history
{%- else %}

select * from ranked
{%- endif %}
