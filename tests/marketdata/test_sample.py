"""The synthetic sample market: NYSE calendar, universe, determinism, realism and the hidden momentum signal.

The statistical checks run on fixed seeds, so they are deterministic; their thresholds leave a wide margin
around the values observed (noted next to each).
"""

from __future__ import annotations

from datetime import date

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest

from stockyard.marketdata.sample import SampleProvider, sample_provider_from_settings
from stockyard.marketdata.schema import (
    ACTION_COLUMNS,
    BAR_COLUMNS,
    GICS_SECTORS,
    METADATA_COLUMNS,
    History,
    MarketDataError,
    validate_bars,
)
from stockyard.marketdata.settings import MarketDataSettings

START = date(2019, 1, 2)
END = date(2024, 12, 31)


def full_history(provider: SampleProvider) -> History:
    return provider.history(provider.symbols(), provider.start, provider.end)


def adjusted_returns(history: History) -> pd.DataFrame:
    """Daily log total returns (date x symbol): each close against the previous close divided by the split
    ratio and less the dividend, which is how the provider defines an ex-date's reference price."""
    actions = history.actions.rename(columns={"ex_date": "date"})[["symbol", "date", *ACTION_COLUMNS[2:]]]
    bars = history.bars.merge(actions, on=["symbol", "date"], how="left").sort_values(["symbol", "date"])
    previous = bars.groupby("symbol")["close"].shift()
    reference = previous / bars["split_ratio"].fillna(1.0) - bars["cash_dividend"].fillna(0.0)
    bars["return"] = np.log(bars["close"] / reference)
    return bars.pivot(index="date", columns="symbol", values="return")


def momentum_rank_ic(returns: pd.DataFrame, horizon: int) -> tuple[float, float]:
    """Mean and standard error of the per-date rank correlation between the trailing 21-session return and
    the next `horizon` sessions' return, on dates `horizon` apart so that forward windows don't overlap."""
    trailing = returns.rolling(21).sum()
    forward = returns.rolling(horizon).sum().shift(-horizon)
    valid = trailing.notna() & forward.notna()
    x = trailing.where(valid).rank(axis=1)
    y = forward.where(valid).rank(axis=1)
    x, y = x.sub(x.mean(axis=1), axis=0), y.sub(y.mean(axis=1), axis=0)
    ic: pd.Series = (x * y).sum(axis=1) / np.sqrt((x**2).sum(axis=1) * (y**2).sum(axis=1))
    ic = ic[valid.sum(axis=1) >= 20].iloc[::horizon]
    return float(ic.mean()), float(ic.std() / np.sqrt(len(ic)))


@pytest.fixture(scope="module")
def provider() -> SampleProvider:
    return SampleProvider(end=END)


@pytest.fixture(scope="module")
def history(provider: SampleProvider) -> History:
    return full_history(provider)


@pytest.fixture(scope="module")
def returns(history: History) -> pd.DataFrame:
    return adjusted_returns(history)


def test_universe_spans_all_sectors_with_plausible_symbols(provider: SampleProvider) -> None:
    symbols = provider.symbols()
    assert len(symbols) >= 100
    metadata = provider.metadata(symbols)
    assert list(metadata.columns) == METADATA_COLUMNS
    assert list(metadata["symbol"]) == symbols
    assert set(metadata["sector"]) == set(GICS_SECTORS)
    assert metadata["symbol"].is_unique
    assert metadata["symbol"].str.fullmatch(r"[A-Z]{3,4}").all()
    assert metadata["name"].notna().all() and metadata["industry"].notna().all()
    assert set(metadata["exchange"]) == {"XNYS", "XNAS"}
    assert (metadata["currency"] == "USD").all()
    assert (metadata["market_cap"] > 1e8).all()
    assert provider.name == "sample" and provider.synthetic


def test_sessions_are_nyse_sessions_over_five_years(history: History) -> None:
    dates = pd.DatetimeIndex(history.bars["date"].unique()).sort_values()
    sessions = xcals.get_calendar("XNYS").sessions_in_range(pd.Timestamp(START), pd.Timestamp(END))
    assert dates.equals(pd.DatetimeIndex(sessions.tz_localize(None) if sessions.tz else sessions))
    assert len(dates) >= 5 * 250
    assert pd.Timestamp("2020-12-25") not in dates and pd.Timestamp("2021-07-05") not in dates


def test_bars_are_valid_as_traded_bars(provider: SampleProvider, history: History) -> None:
    assert history.rejects.empty and not history.failures
    bars = history.bars
    assert (bars[["open", "high", "low", "close"]] > 0).all().all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert bars["volume"].dtype == np.int64 and (bars["volume"] > 0).all()

    symbol_bars, symbol_actions = provider.fetch_symbol(provider.symbols()[0], START, END)
    assert list(symbol_bars.columns) == [*BAR_COLUMNS, "source", "source_row"]
    assert list(symbol_actions.columns) == [*ACTION_COLUMNS, "source", "source_row"]
    assert pd.api.types.is_datetime64_dtype(symbol_bars["date"])
    assert (symbol_bars["source"] == "sample://seed=7").all()
    assert list(symbol_bars["source_row"]) == list(range(1, len(symbol_bars) + 1))
    _, rejects = validate_bars(symbol_bars.assign(provider="sample"))
    assert rejects.empty


def test_volume_rises_with_the_size_of_the_move(history: History, returns: pd.DataFrame) -> None:
    volume = history.bars.pivot(index="date", columns="symbol", values="volume").apply(np.log)
    per_symbol = returns.abs().corrwith(volume)
    assert per_symbol.mean() > 0.3  # observed 0.68


def test_same_seed_same_market_and_different_seeds_differ() -> None:
    end = date(2020, 6, 30)
    first = full_history(SampleProvider(seed=3, n_symbols=20, end=end))
    again = full_history(SampleProvider(seed=3, n_symbols=20, end=end))
    other = full_history(SampleProvider(seed=4, n_symbols=20, end=end))
    pd.testing.assert_frame_equal(first.bars, again.bars)
    pd.testing.assert_frame_equal(first.actions, again.actions)
    assert set(first.bars["symbol"]) != set(other.bars["symbol"])
    assert not np.allclose(first.bars["close"].head(200), other.bars["close"].head(200))


def test_values_on_a_date_do_not_depend_on_the_end_or_the_window() -> None:
    cut = date(2021, 6, 30)
    short = SampleProvider(n_symbols=30, end=cut)
    long = SampleProvider(n_symbols=30, end=date(2023, 3, 31))
    short_history, long_history = full_history(short), long.history(long.symbols(), START, cut)
    pd.testing.assert_frame_equal(short_history.bars, long_history.bars)
    pd.testing.assert_frame_equal(short_history.actions, long_history.actions)

    symbol = long.symbols()[5]
    window_bars, _ = long.fetch_symbol(symbol, date(2020, 3, 2), date(2020, 3, 31))
    all_bars, _ = long.fetch_symbol(symbol, START, long.end)
    in_window = all_bars.loc[all_bars["date"].between("2020-03-02", "2020-03-31")].reset_index(drop=True)
    pd.testing.assert_frame_equal(window_bars, in_window)


def test_fat_tails_and_volatility_clustering(returns: pd.DataFrame) -> None:
    pooled = returns.stack().dropna().to_numpy()
    centred = pooled - pooled.mean()
    excess_kurtosis = (centred**4).mean() / (centred**2).mean() ** 2 - 3
    assert excess_kurtosis > 1  # observed 6.0

    market = returns.mean(axis=1).dropna()
    assert 0.10 < market.std() * np.sqrt(252) < 0.25  # observed 0.14
    single_stock_vol = returns.std() * np.sqrt(252)
    assert 0.2 < single_stock_vol.median() < 0.5  # observed 0.34
    assert (market**2).autocorr(lag=1) > 0.08  # observed 0.166


def test_splits_reverse_splits_and_quarterly_dividends(history: History, returns: pd.DataFrame) -> None:
    actions = history.actions
    assert not actions.duplicated(["symbol", "ex_date"]).any()
    splits = actions.loc[actions["split_ratio"] != 1.0]
    assert {2.0, 3.0, 4.0} <= set(splits["split_ratio"])
    assert (splits["split_ratio"] == 0.5).any()
    dividends = actions.loc[actions["cash_dividend"] > 0]
    assert dividends["symbol"].nunique() >= 40  # observed 67 payers
    per_payer_year = dividends.groupby([dividends["symbol"], dividends["ex_date"].dt.year]).size()
    assert per_payer_year.median() == 4
    assert set(actions["ex_date"]) <= set(history.bars["date"])

    # Traded prices jump by the split ratio on the ex-date; the adjusted returns do not.
    bars = history.bars.sort_values(["symbol", "date"])
    bars["raw"] = np.log(bars["close"] / bars.groupby("symbol")["close"].shift())
    split_days = bars.merge(splits, left_on=["symbol", "date"], right_on=["symbol", "ex_date"])
    assert len(split_days) == len(splits)
    assert (split_days["raw"].abs() > np.log(1.5)).all()
    assert returns.abs().max().max() < 0.6  # observed 0.41


def test_some_symbols_list_later(provider: SampleProvider, history: History) -> None:
    first_bar = history.bars.groupby("symbol")["date"].min()
    late = first_bar[first_bar > pd.Timestamp(START)]
    assert 0.10 <= len(late) / len(provider.symbols()) <= 0.15
    assert set(first_bar.index) == set(provider.symbols())

    early = SampleProvider(end=date(2019, 3, 29))
    assert early.symbols() == provider.symbols()
    listed = set(full_history(early).bars["symbol"])
    assert listed < set(early.symbols())
    assert early.metadata(sorted(set(early.symbols()) - listed))["market_cap"].isna().all()


def test_no_signal_means_no_momentum() -> None:
    null = adjusted_returns(full_history(SampleProvider(signal_strength=0.0, end=END)))
    mean, error = momentum_rank_ic(null, horizon=5)
    assert abs(mean) < 2 * error  # observed 0.003 with a standard error of 0.006


def test_signal_is_weak_by_default_and_grows_with_strength(returns: pd.DataFrame) -> None:
    daily, daily_error = momentum_rank_ic(returns, horizon=1)
    assert 0.01 < daily < 0.05 and daily > 4 * daily_error  # observed 0.022 (standard error 0.003)

    strong = adjusted_returns(full_history(SampleProvider(signal_strength=0.05, end=END)))
    mean, error = momentum_rank_ic(strong, horizon=5)
    assert mean > 0.05 and mean > 8 * error  # observed 0.114 (standard error 0.006)


def test_unknown_symbols_fail_without_stopping_the_others(provider: SampleProvider) -> None:
    with pytest.raises(MarketDataError) as raised:
        provider.fetch_symbol("NOPE", START, END)
    assert raised.value.symbol == "NOPE"
    known = provider.symbols()[0]
    history = provider.history([known, "NOPE"], START, date(2019, 1, 31))
    assert set(history.bars["symbol"]) == {known}
    assert [failure.symbol for failure in history.failures] == ["NOPE"]


def test_built_from_settings() -> None:
    settings = MarketDataSettings(sample_seed=11, sample_symbols=40, sample_signal_strength=0.0, start=START)
    provider = sample_provider_from_settings(settings)
    assert (provider.seed, provider.n_symbols, provider.signal_strength, provider.start) == (
        11,
        40,
        0.0,
        START,
    )
    assert len(provider.symbols()) == 40
    with pytest.raises(ValueError):
        SampleProvider(n_symbols=5)
