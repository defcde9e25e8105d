"""bench/adjusted_close: does the adjusted close dbt computes agree with Alpha Vantage's own?

Compares marts.fct_daily_prices.adj_close with the `adjusted_close` column of the real S&P 500 files on every
row where both exist, and prints the share within 0.5%, the worst symbols and why they differ. Assumes the
real data is loaded into --database-url and the marts are built (bench.dbt does both).

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
    print("symbols with rows outside (share of their rows, worst error):")
    for symbol, row in outside.head(15).iterrows():
        print(f"  {symbol:<6} {row['share_outside']:>7.1%}  {row['max_error']:>8.1%}")
    by_name = {symbol_from_filename(path.name): path for path in files}
    for symbol in outside.head(15).index:
        print(f"why {symbol} differs: adjustment steps the file's own split and dividend columns do not give")
        for line in unexplained_steps(pd.read_csv(by_name[str(symbol)], parse_dates=["timestamp"])):
            print(f"  {line}")


def unexplained_steps(history: pd.DataFrame) -> list[str]:
    """Dates on which the file's adjustment factor (adjusted_close / close) steps by other than the split and
    dividend its own columns record for that date. Back-adjusted, the factor of the day before an ex-date is
    the ex-date's times 1 / split x close / (close + dividend): the convention the dbt models use."""
    rows = history.sort_values("timestamp", ignore_index=True)
    factor = rows["adjusted_close"] / rows["close"]
    step = factor.shift(1) / factor
    implied = rows["close"] / (rows["close"] + rows["dividend_amount"]) / rows["split_coefficient"]
    off = (step / implied - 1).abs() > TOLERANCE
    found = rows.loc[off]
    return [
        f"{day.date()}: factor steps x{factor_step:.4f}, the file's split {split:g} and dividend "
        f"{dividend:g} give x{implied_step:.4f}"
        for day, factor_step, split, dividend, implied_step in zip(
            found["timestamp"],
            step[off],
            found["split_coefficient"],
            found["dividend_amount"],
            implied[off],
            strict=True,
        )
    ]


if __name__ == "__main__":
    main()
