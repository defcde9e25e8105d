-- The products layer: what the product assets write (orchestration/products) and the API serves (serving/).
-- Every row says where it came from: the model name and version that made it, the data date it was made
-- on, and data_source ('synthetic' when the sample provider produced the prices, else the provider).
create schema if not exists products;

-- The registered model versions the products were made with, and their walk-forward metrics; the API's
-- `models` endpoint reads this table, never MLflow at request time.
create table if not exists products.model_versions (
    model_name         text        not null,
    family             text        not null,
    version            text        not null,
    -- 'champion', 'challenger', or null once a newer version took the alias
    alias              text check (alias in ('champion', 'challenger')),
    run_id             text        not null,
    run_url            text        not null,
    evaluation_start   date        not null,
    evaluation_end     date        not null,
    -- the same names for every family: ic, rank_ic, icir, rank_icir, hit_rate, top_decile_return, ...
    metrics            jsonb       not null,
    promotion_reason   text        not null,
    dataset_fingerprint text       not null,
    data_source        text        not null,
    registered_at      timestamptz not null default now(),
    primary key (model_name, version)
);
create unique index if not exists model_versions_alias_idx on products.model_versions (model_name, alias);

-- Daily recommendations, one row per symbol per date; re-running a date replaces its rows.
create table if not exists products.recommendations (
    date                    date             not null,
    symbol                  text             not null,
    score                   double precision not null,
    -- 1 is the best; contiguous within a date
    rank                    integer          not null,
    -- share of the date's symbols scored at or below this one, in (0, 1]
    percentile              double precision not null,
    expected_excess_return  double precision not null,
    confidence              double precision not null,
    action                  text             not null check (action in ('buy', 'hold', 'sell')),
    -- [{"feature": "rsi_14", "value": 71.2, "contribution": 0.0013}, ...], largest |contribution| first
    top_contributions       jsonb            not null,
    model_name              text             not null,
    model_version           text             not null,
    data_date               date             not null,
    data_source             text             not null,
    created_at              timestamptz      not null default now(),
    primary key (date, symbol)
);
create index if not exists recommendations_symbol_date_idx on products.recommendations (symbol, date);
create index if not exists recommendations_date_rank_idx on products.recommendations (date, rank);

-- Prophet's forecast of the close for the next trading days, with its interval; one row per forecast
-- target date of each symbol, per data date the forecast was made on.
create table if not exists products.forecasts (
    data_date      date             not null,
    symbol         text             not null,
    target_date    date             not null,
    -- trading days ahead of data_date, 1..horizon
    step           integer          not null,
    predicted_close double precision not null,
    lower_close    double precision not null,
    upper_close    double precision not null,
    interval_width double precision not null,
    model_name     text             not null,
    model_version  text             not null,
    data_source    text             not null,
    created_at     timestamptz      not null default now(),
    primary key (data_date, symbol, target_date)
);
create index if not exists forecasts_symbol_data_date_idx on products.forecasts (symbol, data_date);

-- Backtests of the top-k strategy on a model version's scores; metrics as columns for the API.
create table if not exists products.backtests (
    backtest_id         bigserial        primary key,
    model_name          text             not null,
    model_version       text             not null,
    run_id              text             not null,
    start_date          date             not null,
    end_date            date             not null,
    top_k               integer          not null,
    rebalance_days      integer          not null,
    cost_bps            double precision not null,
    annual_return       double precision not null,
    annual_volatility   double precision not null,
    sharpe              double precision not null,
    sortino             double precision not null,
    max_drawdown        double precision not null,
    calmar              double precision not null,
    turnover            double precision not null,
    hit_rate            double precision not null,
    benchmark_annual_return double precision not null,
    excess_annual_return    double precision not null,
    data_date           date             not null,
    data_source         text             not null,
    created_at          timestamptz      not null default now()
);
create index if not exists backtests_model_idx on products.backtests (model_name, model_version, created_at);

-- The daily values of a backtest's strategy and benchmark (both start at 1.0).
create table if not exists products.backtest_equity (
    backtest_id     bigint           not null references products.backtests on delete cascade,
    date            date             not null,
    strategy_value  double precision not null,
    benchmark_value double precision not null,
    primary key (backtest_id, date)
);

-- What the backtest held after each rebalance, for a stock's backtest context.
create table if not exists products.backtest_positions (
    backtest_id     bigint           not null references products.backtests on delete cascade,
    rebalance_date  date             not null,
    symbol          text             not null,
    weight          double precision not null,
    primary key (backtest_id, rebalance_date, symbol)
);
create index if not exists backtest_positions_symbol_idx on products.backtest_positions (symbol, backtest_id);

-- Realized signal health: per recommendation date whose horizon has passed, how the scores did.
create table if not exists products.signal_health (
    date               date             not null,
    model_name         text             not null,
    -- the version that made that date's recommendations
    model_version      text             not null,
    horizon_days       integer          not null,
    realized_rank_ic   double precision,
    top_decile_return  double precision,
    rolling_rank_ic    double precision,
    symbols            integer          not null,
    data_source        text             not null,
    primary key (model_name, date)
);
