"""bench/adjusted_close: does the adjusted close dbt computes agree with Alpha Vantage's own?

Compares marts.fct_daily_prices.adj_close with the `adjusted_close` column of the real S&P 500 files on every
row where both exist, and prints the share within 0.5%. For each symbol with rows outside, it prints the
steps in the file's adjustment factor that the loaded splits and dividends do not give, with the raw close's
moves around them, and counts the rows outside that such a step explains: where the factor steps and the raw
close does not move, the file's adjusted close is the one that is wrong. Assumes the real data is loaded
into --database-url and the marts are built (bench.dbt does both).

    .venv/bin/python -m bench.adjusted_close --database-url postgresql://postgres@127.0.0.1:5432/stockyard_bench_dbt
"""

import argparse

import pandas as pd
import psycopg

from bench._common import real_data_dir
from stockyard.marketdata.csv_files import symbol_from_filename

TOLERANCE = 0.005


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()

    files = sorted(real_data_dir().glob("*.csv"))
    expected = pd.concat(
        [
            pd.read_csv(path, usecols=["timestamp", "adjusted_close"], parse_dates=["timestamp"]).assign(
                symbol=symbol_from_filename(path.name)
            )
            for path in files
            if path.read_bytes()[:9] == b"timestamp"
        ],
        ignore_index=True,
    ).rename(columns={"timestamp": "date", "adjusted_close": "expected"})
    with psycopg.connect(args.database_url) as conn:
        computed = pd.DataFrame(
            conn.execute("select symbol, date, adj_close from marts.fct_daily_prices").fetchall(),
            columns=["symbol", "date", "adj_close"],
        )
    computed["date"] = pd.to_datetime(computed["date"])
    both = expected.merge(computed, on=["symbol", "date"]).dropna()
    both["relative_error"] = (both["adj_close"] / both["expected"] - 1).abs()
    within = both["relative_error"] <= TOLERANCE
    both["outside"] = ~within
    by_symbol = both.groupby("symbol").agg(
        max_error=("relative_error", "max"), share_outside=("outside", "mean")
    )
    outside = by_symbol[by_symbol["max_error"] > TOLERANCE].sort_values("share_outside", ascending=False)

    print(f"rows compared:                 {len(both):>12,}")
    print(
        f"within {TOLERANCE:.1%}:                  {within.mean():>12.2%}  ({(~within).sum():,} rows outside)"
    )
    print(f"symbols with every row within: {len(by_symbol) - len(outside):>12} of {len(by_symbol)}")
    print(f"median relative error:         {both['relative_error'].median():>12.2e}")
    by_name = {symbol_from_filename(path.name): path for path in files}
    with psycopg.connect(args.database_url) as conn:
        loaded_actions = pd.DataFrame(
            conn.execute(
                "select symbol, ex_date, split_ratio, cash_dividend from raw.corporate_actions"
                " where symbol = any(%s)",
                (list(outside.index),),
            ).fetchall(),
            columns=["symbol", "date", "split", "dividend"],
        )
    loaded_actions["date"] = pd.to_datetime(loaded_actions["date"])
    defects = {
        str(symbol): unsupported_steps(
            pd.read_csv(by_name[str(symbol)], parse_dates=["timestamp"]),
            loaded_actions.loc[loaded_actions["symbol"] == symbol],
        )
        for symbol in outside.index
    }
    # Back-adjustment carries a wrong step in the file's factor to every row before it.
    last_defect = pd.Series({symbol: steps.index.max() for symbol, steps in defects.items() if len(steps)})
    rows_outside = both.loc[both["outside"]]
    explained = rows_outside["date"] < rows_outside["symbol"].map(last_defect)
    print(
        f"rows outside dated before a step in the file's adjustment factor that its raw closes contradict: "
        f"{explained.sum():,} of {len(rows_outside):,}"
    )
    print("symbols with rows outside (share of their rows, worst error):")
    for symbol, row in outside.iterrows():
        print(f"  {symbol:<6} {row['share_outside']:>7.1%}  {row['max_error']:>8.1%}")
    for symbol, steps in defects.items():
        print(f"why {symbol} differs: the file's adjustment factor steps where its raw close does not move")
        for day, step in zip(steps.index, steps.to_dict("records"), strict=True):
            print(
                f"  {day.date()}: factor steps x{step['factor_step']:.4f}, the loaded actions give "
                f"x{step['implied_step']:.4f}; the raw close moves x{step['raw_move']:.4f} that day, "
                f"x{step['next_raw_move']:.4f} the next"
            )


def unsupported_steps(history: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """The dates on which the file's adjustment factor (adjusted_close / close) steps by other than the
    actions loaded for the symbol give, with the raw close's moves that day and the next, net of those
    actions.

    The loader already took in the splits the file's factor and raw closes agree on
    (stockyard.marketdata.adjustment), so what is left is a step the raw closes do not show. Back-adjusted,
    the factor of the day before an ex-date is the ex-date's times close / (close + dividend) / split: the
    convention the dbt models use."""
    rows = (
        history.rename(columns={"timestamp": "date"})[["date", "close", "adjusted_close"]]
        .merge(actions[["date", "split", "dividend"]], on="date", how="left")
        .fillna({"split": 1.0, "dividend": 0.0})
        .sort_values("date", ignore_index=True)
    )
    factor = rows["adjusted_close"] / rows["close"]
    rows["factor_step"] = factor.shift(1) / factor
    rows["implied_step"] = rows["close"] / (rows["close"] + rows["dividend"]) / rows["split"]
    rows["raw_move"] = (rows["close"] + rows["dividend"]) * rows["split"] / rows["close"].shift(1)
    rows["next_raw_move"] = rows["raw_move"].shift(-1)
    off = (rows["factor_step"] / rows["implied_step"] - 1).abs() > TOLERANCE
    return rows.loc[off].set_index("date")[["factor_step", "implied_step", "raw_move", "next_raw_move"]]


if __name__ == "__main__":
    main()
