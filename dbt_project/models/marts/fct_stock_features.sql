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
{#- The longest look-back a feature needs: a year of trading days before the date. -#}
{%- set year = 252 %}
{#- A run writing at most a week of dates gathers each written row's year of rows (trailing_statistic) rather
    than sweeping windows through all of them: a year per row written against a year per symbol. Symbols whose
    history the run restates are swept all the same. -#}
{%- set gathers_lookback = restates_history and window.calendar_days <= 7 %}
{#- The windows of the returns (return_<days>d) and of the moving averages (close_to_sma_<days>), in trading
    days: each feature's trailing statistic and its column are made from them. -#}
{%- set return_days = [5, 21, 63, 252] %}
{%- set sma_days = [5, 10, 20, 50, 200] %}
{#- What each feature is computed from: the row's own values, and statistics of its trailing trading days,
    (name, aggregate, arguments, days), see trailing_statistic. -#}
{%- set row_columns = [
    'symbol', 'date', 'history_days', 'adj_close', 'adj_volume', 'return_1d', 'log_return_1d',
    'ema_12', 'ema_26', 'macd_signal', 'avg_gain_14', 'avg_loss_14', 'atr_14',
] %}
{%- set trailing_statistics = [] %}
{%- for days in return_days %}
    {%- do trailing_statistics.append(('adj_close_' ~ days ~ 'd_ago', 'lag', 'adj_close', days)) %}
{%- endfor %}
{%- for days in sma_days %}
    {%- do trailing_statistics.append(('sma_' ~ days, 'avg', 'adj_close_numeric', days)) %}
{%- endfor %}
{%- do trailing_statistics.extend([
    ('close_stddev_20d', 'stddev_pop', 'adj_close_numeric', 20),
    ('volume_mean_20d', 'avg', 'adj_volume_numeric', 20),
    ('volume_stddev_20d', 'stddev_samp', 'adj_volume_numeric', 20),
    ('log_return_stddev_21d', 'stddev_samp', 'log_return_1d_numeric', 21),
    ('log_return_stddev_63d', 'stddev_samp', 'log_return_1d_numeric', 63),
    ('market_beta_63d', 'regr_slope', 'return_1d, market_return_1d', 63),
    ('market_correlation_63d', 'corr', 'return_1d, market_return_1d', 63),
]) %}
{#- Ranked across symbols per date. All scale-free, see ranks. -#}
{%- set ranked_features = [
    'return_5d', 'return_21d', 'return_63d', 'return_252d', 'momentum_12_1', 'volatility_21d', 'volatility_63d',
    'close_to_sma_50', 'close_to_sma_200', 'rsi_14', 'bollinger_percent_b', 'volume_zscore_20d',
    'distance_from_52w_high', 'beta_63d',
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
        ref('int_prices_adjusted'), window, trading_days_before=year, restate_history=is_incremental()
    ) }}
),
{%- endif %}

-- The rows to compute with the year of history before them, and the symbol's running states. A feature is
-- null until history_days (the symbol's trading days so far) fills its window.
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
        adjusted_prices.adj_close::numeric as adj_close_numeric,
        adjusted_prices.adj_volume::numeric as adj_volume_numeric,
        ln(adjusted_prices.adj_close / adjusted_prices.previous_adj_close)::numeric as log_return_1d_numeric,
        market_returns.market_return_1d,
        smoothed_prices.history_days,
        smoothed_prices.ema_12,
        smoothed_prices.ema_26,
        smoothed_prices.macd_signal,
        smoothed_prices.avg_gain_14,
        smoothed_prices.avg_loss_14,
        smoothed_prices.atr_14
        {%- if gathers_lookback %},
        scope.restates_history
        {%- endif %}
    from adjusted_prices
    {%- if window %}
    inner join scope
        on adjusted_prices.symbol = scope.symbol
        and adjusted_prices.date between scope.read_from and scope.read_to
    {%- endif %}
    inner join smoothed_prices
        on adjusted_prices.symbol = smoothed_prices.symbol
        and adjusted_prices.date = smoothed_prices.date
    left join market_returns on adjusted_prices.date = market_returns.date
),

-- Swept: the year's high and low in linear time (van Herk / Gil-Werman). Cut each symbol's rows into blocks of
-- a year. The year ending on a row spans the end of the previous block from the row a year back and the start
-- of its own block up to the row, so its extreme is the larger of a running extreme from the block's end
-- backwards, taken a year back, and one from the block's start forwards, taken on the row. The backward one
-- comes first, in a pass of its own; the forward one shares the pass below.
block_extremes_from_date as (
    select
        *,
        max(adj_high) over block_from_date as block_high_from_date,
        min(adj_low) over block_from_date as block_low_from_date
    from prices_in_scope
    {%- if gathers_lookback %}
    where restates_history
    {%- endif %}
    window block_from_date as (
        partition by symbol, (history_days - 1) / {{ year }} order by date desc
        rows between unbounded preceding and current row
    )
),

-- Every trailing statistic in one pass over rows sorted once. Moving means and deviations aggregate the numeric
-- copies of their inputs, converted once per row rather than on each entry to and exit from a frame.
swept_statistics as (
    select
        {%- for column in row_columns %}
        {{ column }},
        {%- endfor %}
        greatest(
            max(adj_high) over block_to_date, lag(block_high_from_date, {{ year - 1 }}) over symbol_history
        ) as high_52w,
        least(
            min(adj_low) over block_to_date, lag(block_low_from_date, {{ year - 1 }}) over symbol_history
        ) as low_52w,
        {%- for name, aggregate, arguments, days in trailing_statistics %}
        {{ trailing_statistic(aggregate, arguments, days, gathered=false) }} as {{ name }}
        {{- ',' if not loop.last }}
        {%- endfor %}
    from block_extremes_from_date
    window
        block_to_date as (
            partition by symbol, (history_days - 1) / {{ year }} order by date
            rows between unbounded preceding and current row
        ),
        symbol_history as (partition by symbol order by date),
        {%- for days in trailing_statistics | rejectattr(1, 'equalto', 'lag') | map(attribute=3) | unique | sort %}
        last_{{ days }}_days as (symbol_history rows between {{ days - 1 }} preceding and current row)
        {{- ',' if not loop.last }}
        {%- endfor %}
),
{%- if gathers_lookback %}

-- Gathered: each written row with its year of rows, `rows_back` trading days before it (0 for itself).
lookback as (
    select
        written.symbol as written_symbol,
        written.date as written_date,
        written.history_days - earlier.history_days as rows_back,
        earlier.*
    from prices_in_scope as written
    inner join prices_in_scope as earlier
        on written.symbol = earlier.symbol
        and earlier.history_days between written.history_days - {{ year }} and written.history_days
    where written.date between {{ window.start }} and {{ window.end }} and not written.restates_history
),

gathered_statistics as (
    select
        written_symbol,
        written_date,
        max(adj_high) filter (where rows_back < {{ year }}) as high_52w,
        min(adj_low) filter (where rows_back < {{ year }}) as low_52w,
        {%- for name, aggregate, arguments, days in trailing_statistics %}
        {{ trailing_statistic(aggregate, arguments, days, gathered=true) }} as {{ name }}
        {{- ',' if not loop.last }}
        {%- endfor %}
    from lookback
    group by written_symbol, written_date
),
{%- endif %}

rolling_statistics as (
    select * from swept_statistics
    {%- if gathers_lookback %}

    union all

    select
        {%- for column in row_columns %}
        prices_in_scope.{{ column }},
        {%- endfor %}
        gathered_statistics.high_52w,
        gathered_statistics.low_52w,
        {%- for name, _, _, _ in trailing_statistics %}
        gathered_statistics.{{ name }}
        {{- ',' if not loop.last }}
        {%- endfor %}
    from prices_in_scope
    inner join gathered_statistics
        on prices_in_scope.symbol = gathered_statistics.written_symbol
        and prices_in_scope.date = gathered_statistics.written_date
    {%- endif %}
),

features as (
    select
        rolling_statistics.symbol,
        rolling_statistics.date,
        rolling_statistics.history_days,
        rolling_statistics.return_1d,
        {%- for days in return_days %}
        rolling_statistics.adj_close / rolling_statistics.adj_close_{{ days }}d_ago - 1 as return_{{ days }}d,
        {%- endfor %}
        rolling_statistics.log_return_1d,
        -- The year's return without its last month: from 252 to 21 trading days ago.
        rolling_statistics.adj_close_21d_ago / rolling_statistics.adj_close_252d_ago - 1 as momentum_12_1,
        case
            when rolling_statistics.history_days > 21 then sqrt(252) * rolling_statistics.log_return_stddev_21d
        end as volatility_21d,
        case
            when rolling_statistics.history_days > 63 then sqrt(252) * rolling_statistics.log_return_stddev_63d
        end as volatility_63d,
        {%- for days in sma_days %}
        case
            when rolling_statistics.history_days >= {{ days }}
                then rolling_statistics.adj_close / rolling_statistics.sma_{{ days }}
        end as close_to_sma_{{ days }},
        {%- endfor %}
        case
            when rolling_statistics.history_days >= 26 then rolling_statistics.ema_12 - rolling_statistics.ema_26
        end as macd,
        case
            when rolling_statistics.history_days >= 26 + 9 - 1 then rolling_statistics.macd_signal
        end as macd_signal,
        -- Null until the averages are warm. No move at all over their span (both 0): neutral, 50.
        case
            when rolling_statistics.avg_gain_14 + rolling_statistics.avg_loss_14 > 0
                then 100 * rolling_statistics.avg_gain_14
                / (rolling_statistics.avg_gain_14 + rolling_statistics.avg_loss_14)
            when rolling_statistics.avg_gain_14 is not null then 50
        end as rsi_14,
        -- Where the close sits in the Bollinger band (20 days, 2 population standard deviations): 0 on the
        -- lower band, 1 on the upper; 0.5 in a band of zero width (twenty equal closes: the close is on the
        -- middle band).
        case
            when rolling_statistics.history_days >= 20 and rolling_statistics.close_stddev_20d > 0
                then (rolling_statistics.adj_close - rolling_statistics.sma_20)
                / (4 * rolling_statistics.close_stddev_20d) + 0.5
            when rolling_statistics.history_days >= 20 then 0.5
        end as bollinger_percent_b,
        rolling_statistics.atr_14,
        -- 0 when the twenty volumes are equal (zero included): the volume is its mean.
        case
            when rolling_statistics.history_days >= 20 and rolling_statistics.volume_stddev_20d > 0
                then (rolling_statistics.adj_volume - rolling_statistics.volume_mean_20d)
                / rolling_statistics.volume_stddev_20d
            when rolling_statistics.history_days >= 20 then 0
        end as volume_zscore_20d,
        case
            when rolling_statistics.history_days >= {{ year }}
                then rolling_statistics.adj_close / rolling_statistics.high_52w - 1
        end as distance_from_52w_high,
        case
            when rolling_statistics.history_days >= {{ year }}
                then rolling_statistics.adj_close / rolling_statistics.low_52w - 1
        end as distance_from_52w_low,
        -- Both undefined (null) when the market's returns did not vary: regr_slope and corr are null then.
        case when rolling_statistics.history_days > 63 then rolling_statistics.market_beta_63d end as beta_63d,
        -- corr is also null when the stock's returns did not vary (a flat price), and only then beside a
        -- beta: its covariance with the market is 0, as is its beta, so it is 0.
        case
            when rolling_statistics.history_days > 63
                then coalesce(
                    rolling_statistics.market_correlation_63d,
                    case when rolling_statistics.market_beta_63d is not null then 0 end
                )
        end as correlation_63d
    from rolling_statistics
),

features_to_write as (
    select * from features
    {%- if window %}
    where {{ in_written_rows(window) }}
    {%- endif %}
),

-- Each date's values of every ranked feature, negated and sorted: a row's percentile rank is then a binary
-- search in them (percent_rank_among), one small sort per date and feature rather than a sort of every row
-- per feature.
ranked_values_by_date as (
    select
        date,
        {%- for feature in ranked_features %}
        array_agg(-{{ feature }} order by -{{ feature }}) filter (where {{ feature }} is not null)
            as {{ feature }}_values
        {{- ',' if not loop.last }}
        {%- endfor %}
    from features_to_write
    {%- if restates_history %}
    where date between {{ window.start }} and {{ window.end }}
    {%- endif %}
    group by date
),

-- In date order, so that each date's rows meet its sorted values together (one date's arrays stay in the CPU
-- cache instead of every row fetching another date's).
features_by_date as (
    select * from features_to_write
    order by date
),

final as (
    select
        features_by_date.*,
        {%- for feature in ranked_features %}
        {{ percent_rank_among('features_by_date.' ~ feature, 'ranked_values_by_date.' ~ feature ~ '_values') }}
            as {{ feature }}_rank
        {{- ',' if not loop.last }}
        {%- endfor %}
    from features_by_date
    inner join ranked_values_by_date on features_by_date.date = ranked_values_by_date.date
    {%- if restates_history %}

    union all

    -- Rows before the window of the symbols a new split or dividend restated: all their adjusted prices were
    -- rescaled by one factor, which changes the price-level features (macd, macd_signal, atr_14) but none of
    -- the ranked ones beyond rounding, so the ranks stored for those rows still hold.
    select
        features_to_write.*,
        {%- for feature in ranked_features %}
        stored.{{ feature }}_rank
        {{- ',' if not loop.last }}
        {%- endfor %}
    from features_to_write
    inner join {{ this }} as stored
        on features_to_write.symbol = stored.symbol
        and features_to_write.date = stored.date
    where features_to_write.date < {{ window.start }}
    {%- endif %}
)

select * from final
