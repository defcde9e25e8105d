-- The raw layer: what providers returned, validated, loaded by the ingestion assets. dbt reads it as a source.
-- loaded_at defaults to now(), the start of the loading transaction: one timestamp for every row of a load.
create schema if not exists raw;

create table if not exists raw.daily_prices (
    symbol      text             not null,
    date        date             not null,
    open        double precision not null,
    high        double precision not null,
    low         double precision not null,
    close       double precision not null,
    volume      bigint           not null,
    provider    text             not null,
    loaded_at   timestamptz      not null default now(),
    primary key (symbol, date)
);
create index if not exists daily_prices_date_idx on raw.daily_prices (date);

create table if not exists raw.corporate_actions (
    symbol          text             not null,
    ex_date         date             not null,
    -- new shares per old share: 4.0 for a 4-for-1 split, 1.0 when there is no split
    split_ratio     double precision not null default 1.0,
    cash_dividend   double precision not null default 0.0,
    provider        text             not null,
    loaded_at       timestamptz      not null default now(),
    primary key (symbol, ex_date)
);
create index if not exists corporate_actions_ex_date_idx on raw.corporate_actions (ex_date);

create table if not exists raw.stocks (
    symbol       text primary key,
    name         text,
    sector       text,
    -- The sector as the provider wrote it, before stockyard.marketdata.sectors mapped it to today's GICS name
    -- (sector is null where it names no GICS sector).
    sector_as_given text,
    industry     text,
    market_cap   double precision,
    currency     text,
    exchange     text,
    provider     text        not null,
    is_synthetic boolean     not null,
    loaded_at    timestamptz not null default now()
);
-- Warehouses created before sector_as_given. Checked first: altering takes a lock that would wait for readers.
do $$
begin
    if not exists (
        select from information_schema.columns
        where table_schema = 'raw' and table_name = 'stocks' and column_name = 'sector_as_given'
    ) then
        alter table raw.stocks add column sector_as_given text;
    end if;
end
$$;

-- Rows set aside on the way in, with the rule they broke; nothing a provider returned is silently dropped.
create table if not exists raw.quarantined_rows (
    id             bigserial primary key,
    dataset        text        not null,
    partition_key  text        not null,
    provider       text        not null,
    symbol         text,
    date           date,
    source         text,
    source_row     integer,
    rule           text        not null,
    detail         text        not null,
    record         jsonb,
    loaded_at      timestamptz not null default now()
);
create index if not exists quarantined_rows_dataset_date_idx on raw.quarantined_rows (dataset, date);
