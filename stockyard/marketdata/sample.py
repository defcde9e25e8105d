"""A deterministic, seeded synthetic US stock market: the default provider, for development, demos and tests.

It needs no network and no files, and it looks like the real thing to every downstream step: NYSE sessions,
as-traded (unadjusted) prices with splits and cash dividends, new listings, fat tails and volatility
clustering. All of it is generated, so the provider is marked `synthetic` and its rows say so in `source`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pandas as pd

from stockyard.calendar import trading_days
from stockyard.marketdata.base import MarketDataProvider, validated_history
from stockyard.marketdata.schema import (
    ACTION_COLUMNS,
    BAR_COLUMNS,
    GICS_SECTORS,
    METADATA_COLUMNS,
    History,
    MarketDataError,
    SymbolFailure,
)
from stockyard.marketdata.settings import MarketDataSettings

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

DAYS_PER_YEAR = 252
# Shocks are drawn in fixed-size blocks of sessions, each from its own seeded stream, so the values on a date
# never depend on how far the generated window reaches.
BLOCK_DAYS = 256
# Degrees of freedom of the Student-t shocks: tails as fat as daily stock returns'.
T_DF = 5.0
MARKET_VOL = 0.16
SECTOR_VOL = 0.10
# The same log drift for every symbol, so that it predicts nothing across stocks.
DRIFT = 0.06 / DAYS_PER_YEAR
# GARCH(1,1) (alpha, beta): the market's is close to what is estimated on the S&P 500, single stocks'
# idiosyncratic variance clusters more mildly.
MARKET_GARCH = (0.12, 0.86)
IDIO_GARCH = (0.05, 0.93)
MOMENTUM_DAYS = 21
LATE_LISTING_SHARE = 0.12
# Late listings happen within roughly the first four years, counted in sessions from `start`.
LATE_LISTING_DAYS = (21, 1000)
SPLITTER_SHARE = 0.35
SPLIT_RATIOS = (2.0, 3.0, 4.0)
# Below this price a stock does a 1-for-2 reverse split, as exchanges' minimum-price rules push them to.
REVERSE_SPLIT_BELOW = 4.0
REVERSE_SPLIT_RATIO = 0.5
# A quarterly dividend never exceeds this share of the price, so the ex-date reference price stays positive.
MAX_DIVIDEND_SHARE = 0.10
# Share of the day's return that shows up in the opening gap; the rest happens during the session.
GAP_SHARE = 0.3


@dataclass(frozen=True)
class _Sector:
    weight: float  # share of the universe
    beta: float  # typical market beta
    payer_share: float  # share of dividend payers
    dividend_yield: float  # typical annual yield of a payer
    nasdaq_share: float


_SECTORS: dict[str, _Sector] = {
    "Communication Services": _Sector(0.08, 1.05, 0.40, 0.020, 0.60),
    "Consumer Discretionary": _Sector(0.11, 1.15, 0.45, 0.015, 0.45),
    "Consumer Staples": _Sector(0.07, 0.65, 0.90, 0.028, 0.20),
    "Energy": _Sector(0.06, 1.00, 0.85, 0.035, 0.15),
    "Financials": _Sector(0.12, 1.10, 0.85, 0.025, 0.30),
    "Health Care": _Sector(0.12, 0.85, 0.50, 0.015, 0.60),
    "Industrials": _Sector(0.10, 1.05, 0.75, 0.018, 0.25),
    "Information Technology": _Sector(0.16, 1.20, 0.45, 0.010, 0.75),
    "Materials": _Sector(0.06, 1.00, 0.75, 0.025, 0.15),
    "Real Estate": _Sector(0.06, 0.90, 0.95, 0.038, 0.15),
    "Utilities": _Sector(0.06, 0.55, 0.95, 0.035, 0.10),
}
assert tuple(_SECTORS) == GICS_SECTORS

# Per sector, GICS industries and the word a company in each puts in its name.
_INDUSTRIES: dict[str, dict[str, str]] = {
    "Communication Services": {
        "Interactive Media & Services": "Media",
        "Entertainment": "Studios",
        "Diversified Telecommunication Services": "Telecom",
    },
    "Consumer Discretionary": {
        "Specialty Retail": "Retail",
        "Hotels, Restaurants & Leisure": "Hospitality",
        "Automobiles": "Motors",
        "Textiles, Apparel & Luxury Goods": "Apparel",
    },
    "Consumer Staples": {
        "Food Products": "Foods",
        "Beverages": "Beverage",
        "Household Products": "Brands",
        "Consumer Staples Distribution & Retail": "Markets",
    },
    "Energy": {"Oil, Gas & Consumable Fuels": "Petroleum", "Energy Equipment & Services": "Energy Services"},
    "Financials": {
        "Banks": "Bancorp",
        "Capital Markets": "Capital",
        "Insurance": "Insurance",
        "Financial Services": "Financial",
    },
    "Health Care": {
        "Pharmaceuticals": "Pharma",
        "Biotechnology": "Therapeutics",
        "Health Care Equipment & Supplies": "Medical",
        "Health Care Providers & Services": "Health",
    },
    "Industrials": {
        "Aerospace & Defense": "Aerospace",
        "Machinery": "Industries",
        "Ground Transportation": "Logistics",
        "Building Products": "Building Systems",
    },
    "Information Technology": {
        "Software": "Software",
        "Semiconductors & Semiconductor Equipment": "Semiconductor",
        "IT Services": "Systems",
        "Technology Hardware, Storage & Peripherals": "Devices",
    },
    "Materials": {
        "Chemicals": "Chemical",
        "Metals & Mining": "Mining",
        "Containers & Packaging": "Packaging",
    },
    "Real Estate": {
        "Residential REITs": "Residential",
        "Industrial REITs": "Properties",
        "Real Estate Management & Development": "Realty",
    },
    "Utilities": {"Electric Utilities": "Power", "Multi-Utilities": "Utilities", "Water Utilities": "Water"},
}

_NAME_HEADS = (
    "Al Bel Cor Dar El Fen Gal Har Ind Jor Kel Lum Mar Nor Or Pel Quin Ros Sol Tar Ul Ver Wes Xan Yor Zen"
)
_NAME_LINKS = ("", "b", "c", "d", "g", "l", "m", "n", "r", "s", "t", "v")
_NAME_TAILS = "ac an ar en ex ia ion is ix on ora ova um us yx ent ico ida"
_NAME_FORMS = ("{} Inc.", "{} Corp.", "{} Holdings", "{} Group", "{} Co.")
_VOWELS = frozenset("AEIOUY")


# Stream tags keep the universe and the shock blocks on independent random streams.
_UNIVERSE_STREAM = 0
_SHOCK_STREAM = 1


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *stream])))


class SampleProvider(MarketDataProvider):
    """A seeded synthetic US market of `n_symbols` stocks across the 11 GICS sectors, on NYSE sessions.

    Daily log returns are a common drift + beta x market factor + loading x sector factor + idiosyncratic
    noise. Shocks are Student-t (5 df); the market and each stock's idiosyncratic variance follow a
    GARCH(1,1), so returns have fat tails and volatility clusters (about 16% a year for the market, 25-45%
    for single stocks).

    Hidden signal (momentum): with `signal_strength` s > 0, each stock's return on day t+1 gets an extra
    s x sigma_i x z_t, where sigma_i is the stock's long-run daily volatility and z_t is the cross-sectional
    z-score, over the stocks with 21 sessions of history, of the trailing 21-session log return known at the
    close of day t. At the default 0.02 the daily rank IC is about 0.02-0.03: weak, but a model over the
    5-day forward excess return can find it. With s = 0 the market is a pure random walk: expected returns
    are one constant and nothing observable predicts them.

    Prices are as traded. On a split ex-date the price drops by the split ratio (new shares per old share);
    on a dividend ex-date by the dividend, which on a day with both is per post-split share. The day's move
    starts from the reference price, previous close / split ratio - dividend, so back-adjusting with the
    factor reference / previous close recovers the simulated return. About 12% of the stocks list after
    `start` and have no bars before their first session. Values on a date depend only on the seed, the
    universe size and `start`, never on `end` or on the window asked for.
    """

    name = "sample"
    synthetic = True

    def __init__(
        self,
        seed: int = 7,
        n_symbols: int = 110,
        signal_strength: float = 0.02,
        start: date = date(2019, 1, 2),
        end: date | None = None,
    ) -> None:
        if n_symbols < len(GICS_SECTORS):
            raise ValueError(f"the sample market needs at least {len(GICS_SECTORS)} symbols, got {n_symbols}")
        if signal_strength < 0:
            raise ValueError(f"signal_strength must be >= 0, got {signal_strength}")
        self.seed = seed
        self.n_symbols = n_symbols
        self.signal_strength = signal_strength
        self.start = start
        self.end = end or date.today()
        self.source = f"sample://seed={seed}"

    def symbols(self) -> list[str]:
        return list(self._universe["symbol"])

    def metadata(self, symbols: Sequence[str]) -> pd.DataFrame:
        """METADATA_COLUMNS for the known symbols among `symbols`; market cap is as of the last session.

        A stock not yet listed by then has no market cap.
        """
        market = self._market
        cols = self._columns([s for s in symbols if s in self._index])
        frame = self._universe.iloc[cols][["symbol", "name", "sector", "industry", "exchange"]]
        # Closes are NaN only before a listing, so the last session's row is the latest close.
        last_close = market.close[-1, cols] if len(market.dates) else np.full(len(cols), np.nan)
        shares = self._universe["shares"].to_numpy()[cols] * market.split_ratio[:, cols].prod(axis=0)
        return frame.assign(market_cap=shares * last_close, currency="USD")[METADATA_COLUMNS].reset_index(
            drop=True
        )

    def fetch_symbol(self, symbol: str, start: date, end: date) -> tuple[pd.DataFrame, pd.DataFrame]:
        if symbol not in self._index:
            raise MarketDataError("unknown symbol in the sample market", symbol=symbol, source=self.source)
        return self._frames(self._columns([symbol]), start, end)

    def history(self, symbols: Sequence[str], start: date, end: date) -> History:
        """Validated history built as one frame for all known symbols; unknown ones are recorded failures."""
        known = [s for s in dict.fromkeys(symbols) if s in self._index]
        failures = [
            SymbolFailure.of(
                s,
                MarketDataError("unknown symbol in the sample market", symbol=s, source=self.source),
                self.name,
            )
            for s in dict.fromkeys(symbols)
            if s not in self._index
        ]
        bars, actions = self._frames(self._columns(known), start, end)
        return validated_history([bars], [actions], failures, provider=self.name, start=start, end=end)

    @cached_property
    def _universe(self) -> pd.DataFrame:
        return _make_universe(self.seed, self.n_symbols)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {symbol: i for i, symbol in enumerate(self._universe["symbol"])}

    @cached_property
    def _market(self) -> _Market:
        return _simulate(self._universe, trading_days(self.start, self.end), self.seed, self.signal_strength)

    def _columns(self, symbols: Sequence[str]) -> IntArray:
        return np.array([self._index[s] for s in symbols], dtype=np.int64)

    def _frames(self, cols: IntArray, start: date, end: date) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Bars and actions of the symbols in `cols` within [start, end], symbol by symbol, with lineage."""
        market = self._market
        lo = int(market.dates.searchsorted(pd.Timestamp(start), side="left"))
        hi = max(lo, int(market.dates.searchsorted(pd.Timestamp(end), side="right")))
        symbols = self._universe["symbol"].to_numpy()[cols]

        # Transposed, so that boolean indexing walks symbol by symbol and date by date within each.
        listed = market.listed[:, cols]
        bar_mask = listed[lo:hi].T
        which, day = np.nonzero(bar_mask)
        bars = pd.DataFrame(
            {
                "symbol": symbols[which],
                "date": market.dates[lo + day],
                "open": market.open[lo:hi, cols].T[bar_mask],
                "high": market.high[lo:hi, cols].T[bar_mask],
                "low": market.low[lo:hi, cols].T[bar_mask],
                "close": market.close[lo:hi, cols].T[bar_mask],
                "volume": market.volume[lo:hi, cols].T[bar_mask],
                "source": self.source,
                "source_row": pd.array(
                    np.cumsum(listed, axis=0, dtype=np.int64)[lo:hi].T[bar_mask], dtype="Int64"
                ),
            },
            columns=[*BAR_COLUMNS, "source", "source_row"],
        )

        split_ratio, dividend = market.split_ratio[:, cols], market.dividend[:, cols]
        is_action = (split_ratio != 1.0) | (dividend > 0.0)
        action_mask = is_action[lo:hi].T
        which, day = np.nonzero(action_mask)
        actions = pd.DataFrame(
            {
                "symbol": symbols[which],
                "ex_date": market.dates[lo + day],
                "split_ratio": split_ratio[lo:hi].T[action_mask],
                "cash_dividend": dividend[lo:hi].T[action_mask],
                "source": self.source,
                "source_row": pd.array(
                    np.cumsum(is_action, axis=0, dtype=np.int64)[lo:hi].T[action_mask], dtype="Int64"
                ),
            },
            columns=[*ACTION_COLUMNS, "source", "source_row"],
        )
        return bars, actions


def sample_provider_from_settings(settings: MarketDataSettings) -> SampleProvider:
    return SampleProvider(
        seed=settings.sample_seed,
        n_symbols=settings.sample_symbols,
        signal_strength=settings.sample_signal_strength,
        start=settings.start,
    )


@dataclass(frozen=True)
class _Market:
    """The whole generated market: (session, symbol) arrays in the universe's column order."""

    dates: pd.DatetimeIndex
    listed: BoolArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: IntArray
    split_ratio: FloatArray  # 1.0 when there is no split
    dividend: FloatArray  # 0.0 when there is no dividend


def _make_universe(seed: int, n_symbols: int) -> pd.DataFrame:
    """Names, sectors and the per-stock parameters of the model, one row per symbol, sorted by symbol."""
    rng = _rng(seed, _UNIVERSE_STREAM)
    profiles = list(_SECTORS.values())
    weights = np.array([p.weight for p in profiles])
    # Every sector is represented; the rest of the universe follows the sector weights.
    sector_ids = np.concatenate(
        [np.arange(len(profiles)), rng.choice(len(profiles), size=n_symbols - len(profiles), p=weights)]
    )

    rows: list[dict[str, object]] = []
    tickers: set[str] = set()
    for sector_id in sector_ids:
        profile = profiles[sector_id]
        industries = list(_INDUSTRIES[GICS_SECTORS[sector_id]].items())
        industry, word = industries[rng.integers(len(industries))]
        # Nasdaq tickers have four letters, NYSE ones three (a convention most real listings follow).
        nasdaq = rng.random() < profile.nasdaq_share
        pays_dividends = rng.random() < profile.payer_share
        stem, ticker = _company_stem(rng, 4 if nasdaq else 3, tickers)
        tickers.add(ticker)
        rows.append(
            {
                "symbol": ticker,
                "name": str(rng.choice(_NAME_FORMS)).format(f"{stem} {word}"),
                "sector": GICS_SECTORS[sector_id],
                "industry": industry,
                "exchange": "XNAS" if nasdaq else "XNYS",
                "sector_id": int(sector_id),
                "beta": profile.beta + rng.uniform(-0.2, 0.2),
                "sector_loading": rng.uniform(0.6, 1.2),
                "idio_vol": rng.uniform(0.20, 0.40),
                "dividend_yield": profile.dividend_yield * rng.uniform(0.5, 1.5) if pays_dividends else 0.0,
                # Ex-dates fall in every third month, from this day of the month on.
                "dividend_month": int(rng.integers(3)),
                "dividend_day": int(rng.integers(5, 21)),
                "turnover": rng.uniform(0.003, 0.012),
            }
        )
    universe = pd.DataFrame(rows)

    n = n_symbols
    late = np.zeros(n, dtype=bool)
    late[rng.choice(n, size=round(LATE_LISTING_SHARE * n), replace=False)] = True
    universe["list_day"] = np.where(late, rng.integers(*LATE_LISTING_DAYS, size=n), 0)
    # The price a stock starts from: its last close before `start`, or its offering price.
    price = np.where(
        late, rng.uniform(12.0, 40.0, size=n), np.exp(rng.uniform(np.log(6.0), np.log(400.0), n))
    )
    market_cap = np.where(
        late,
        np.exp(rng.uniform(np.log(8e8), np.log(2e10), n)),
        np.exp(rng.uniform(np.log(2e9), np.log(8e11), n)),
    )
    universe["start_price"] = np.round(price, 2)
    universe["shares"] = np.round(market_cap / price, -3)
    # Some stocks split once their price has run up well above where it started.
    splitter = (rng.random(n) < SPLITTER_SHARE) & (price >= 30.0)
    universe["split_above"] = np.where(splitter, price * rng.uniform(1.6, 2.4, n), np.inf)
    universe["split_ratio"] = rng.choice(SPLIT_RATIOS, size=n, p=[0.6, 0.25, 0.15])
    return universe.sort_values("symbol", ignore_index=True)


def _company_stem(rng: np.random.Generator, letters: int, taken: set[str]) -> tuple[str, str]:
    """A made-up company name stem and its ticker, e.g. Keltora -> KLT / KLTR; tickers are unique."""
    while True:
        stem = rng.choice(_NAME_HEADS.split()) + rng.choice(_NAME_LINKS) + rng.choice(_NAME_TAILS.split())
        upper = stem.upper()
        consonants = "".join(c for c in upper[1:] if c not in _VOWELS)
        vowels = "".join(c for c in upper[1:] if c in _VOWELS)
        ticker = (upper[0] + consonants + vowels)[:letters]
        if len(ticker) == letters and ticker not in taken:
            return stem, ticker


def _shocks(seed: int, n_days: int, n_t: int, n_normal: int) -> tuple[FloatArray, FloatArray]:
    """Unit-variance Student-t shocks (n_days x n_t) and standard normals (n_days x n_normal)."""
    t_scale = math.sqrt((T_DF - 2.0) / T_DF)
    t_blocks, normal_blocks = [], []
    for block in range(max(1, math.ceil(n_days / BLOCK_DAYS))):
        rng = _rng(seed, _SHOCK_STREAM, block)
        t_blocks.append(rng.standard_t(T_DF, size=(BLOCK_DAYS, n_t)) * t_scale)
        normal_blocks.append(rng.standard_normal(size=(BLOCK_DAYS, n_normal)))
    return np.concatenate(t_blocks)[:n_days], np.concatenate(normal_blocks)[:n_days]


def _simulate(universe: pd.DataFrame, dates: pd.DatetimeIndex, seed: int, signal_strength: float) -> _Market:
    n_days, n = len(dates), len(universe)
    shocks, normals = _shocks(seed, n_days, 1 + len(GICS_SECTORS) + n, 4 * n)
    returns, vol, sigma = _simulate_returns(universe, shocks, signal_strength)
    close, reference, split_ratio, dividend = _simulate_prices(universe, dates, returns)

    list_day = universe["list_day"].to_numpy()
    listed = np.arange(n_days)[:, None] >= list_day[None, :]
    gap, high_ext, low_ext, volume_noise = np.split(normals, 4, axis=1)
    # Rounding to cents is monotone, so high >= max(open, close) and low <= min(open, close) survive it.
    open_ = np.round(reference * np.exp(GAP_SHARE * returns + 0.25 * vol * gap), 2)
    high = np.round(np.maximum(open_, close) * np.exp(0.6 * vol * np.abs(high_ext)), 2)
    low = np.round(np.minimum(open_, close) * np.exp(-0.6 * vol * np.abs(low_ext)), 2)
    # Volume is in shares (so it scales with splits) and rises with the size of the day's move.
    shares = universe["shares"].to_numpy() * np.cumprod(split_ratio, axis=0)
    activity = (1 + np.abs(returns) / sigma) * np.exp(0.3 * volume_noise - 0.6)
    volume = np.where(listed, np.rint(shares * universe["turnover"].to_numpy() * activity), 0).astype(
        np.int64
    )
    return _Market(
        dates=dates,
        listed=listed,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        split_ratio=split_ratio,
        dividend=dividend,
    )


def _simulate_returns(
    universe: pd.DataFrame, shocks: FloatArray, signal_strength: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Daily log total returns and their conditional volatility (session x symbol), and each stock's
    long-run daily volatility. Shock columns: market, one per sector, one per stock."""
    n_days, n = shocks.shape[0], len(universe)
    beta = universe["beta"].to_numpy(dtype=np.float64)
    loading = universe["sector_loading"].to_numpy(dtype=np.float64)
    list_day = universe["list_day"].to_numpy()
    sector_col = 1 + universe["sector_id"].to_numpy()
    idio_start = 1 + len(GICS_SECTORS)
    market_var = MARKET_VOL**2 / DAYS_PER_YEAR
    sector_var = SECTOR_VOL**2 / DAYS_PER_YEAR
    idio_var = universe["idio_vol"].to_numpy(dtype=np.float64) ** 2 / DAYS_PER_YEAR
    sigma = np.sqrt(beta**2 * market_var + loading**2 * sector_var + idio_var)
    (market_alpha, market_beta), (idio_alpha, idio_beta) = MARKET_GARCH, IDIO_GARCH

    returns = np.empty((n_days, n))
    vol = np.empty((n_days, n))
    h_market, h_idio = market_var, idio_var.copy()
    momentum_z = np.zeros(n)
    for t in range(n_days):
        market = math.sqrt(h_market) * shocks[t, 0]
        idio = np.sqrt(h_idio) * shocks[t, idio_start:]
        returns[t] = (
            DRIFT
            + beta * market
            + loading * math.sqrt(sector_var) * shocks[t, sector_col]
            + idio
            + signal_strength * sigma * momentum_z
        )
        vol[t] = np.sqrt(beta**2 * h_market + loading**2 * sector_var + h_idio)
        h_market = (
            (1 - market_alpha - market_beta) * market_var + market_alpha * market**2 + market_beta * h_market
        )
        h_idio = (1 - idio_alpha - idio_beta) * idio_var + idio_alpha * idio**2 + idio_beta * h_idio
        if signal_strength > 0:
            momentum_z = _momentum_z(returns, t, list_day)
    return returns, vol, sigma


def _momentum_z(returns: FloatArray, t: int, list_day: IntArray) -> FloatArray:
    """Cross-sectional z-score of the trailing 21-session return at the close of session t (0 where a stock
    has less history than that)."""
    z = np.zeros(returns.shape[1])
    eligible = t - list_day >= MOMENTUM_DAYS - 1
    if eligible.sum() < 2:
        return z
    trailing = returns[t - MOMENTUM_DAYS + 1 : t + 1, eligible].sum(axis=0)
    spread = trailing.std()
    if spread > 0:
        z[eligible] = (trailing - trailing.mean()) / spread
    return z


def _simulate_prices(
    universe: pd.DataFrame, dates: pd.DatetimeIndex, returns: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """As-traded closes (NaN before listing), each session's reference price, and the corporate actions.

    Splits and dividends depend on the traded price, so this walks the sessions in order.
    """
    n_days, n = returns.shape
    list_day = universe["list_day"].to_numpy()
    split_above = universe["split_above"].to_numpy(dtype=np.float64)
    split_to = universe["split_ratio"].to_numpy(dtype=np.float64)
    quarterly_yield = universe["dividend_yield"].to_numpy(dtype=np.float64) / 4
    payer = quarterly_yield > 0
    dividend_month = universe["dividend_month"].to_numpy()
    dividend_day = universe["dividend_day"].to_numpy()
    month = dates.month.to_numpy()
    day_of_month = dates.day.to_numpy()
    month_id = dates.year.to_numpy() * 12 + month

    close = np.full((n_days, n), np.nan)
    reference = np.empty((n_days, n))
    split_ratio = np.ones((n_days, n))
    dividend = np.zeros((n_days, n))
    previous = universe["start_price"].to_numpy(dtype=np.float64).copy()
    declared = np.zeros(n)  # the current quarterly dividend per share
    payments = np.zeros(n, dtype=np.int64)
    last_paid_month = np.full(n, -1)
    for t in range(n_days):
        listed = t >= list_day
        trading = t > list_day  # has a previous close, so corporate actions can apply
        ratio = np.where(trading & (previous > split_above), split_to, 1.0)
        ratio = np.where(trading & (previous < REVERSE_SPLIT_BELOW), REVERSE_SPLIT_RATIO, ratio)
        base = previous / ratio
        declared /= ratio
        ex = (
            trading
            & payer
            & ((month[t] - 1) % 3 == dividend_month)
            & (day_of_month[t] >= dividend_day)
            & (last_paid_month != month_id[t])
        )
        # The dividend is reset once a year from the price, like a board raising it annually.
        declared = np.where(ex & (payments % 4 == 0), np.round(quarterly_yield * base, 2), declared)
        paid = np.where(
            ex, np.minimum(np.round(declared, 2), np.floor(MAX_DIVIDEND_SHARE * base * 100) / 100), 0.0
        )
        paid = np.where(paid >= 0.01, paid, 0.0)
        payments += ex
        last_paid_month = np.where(ex, month_id[t], last_paid_month)

        reference[t] = base - paid
        today = np.round(reference[t] * np.exp(returns[t]), 2)
        close[t] = np.where(listed, today, np.nan)
        previous = np.where(listed, today, previous)
        split_ratio[t], dividend[t] = ratio, paid
    return close, reference, split_ratio, dividend
