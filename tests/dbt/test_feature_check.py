"""The blocking feature check on the features dbt built from the synthetic market, flat prices included."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from stockyard.quality.features import FEATURES_TABLE, check_features
from stockyard.quality.results import Window
from tests.dbt.synthetic_market import RawMarket

pytestmark = pytest.mark.slow


def count_rows(conn: psycopg.Connection, symbol: str, condition: str) -> int:
    query = f"select count(*) from {FEATURES_TABLE} where symbol = %s and {condition}"
    row = conn.execute(query, (symbol,)).fetchone()  # type: ignore[arg-type]
    return int(row[0])


def test_flat_prices_have_every_feature_and_pass_while_real_defects_still_block(
    built_warehouse: str, market: RawMarket, tmp_path: Path
) -> None:
    dates = sorted(market.bars["date"].dt.date.unique())
    window = Window.of(dates[0], dates[-1])
    with psycopg.connect(built_warehouse) as conn:
        # SY10 did not move for its first 70 sessions: no move for 56 RSIs (from its 15th row), none of its
        # 63-day returns for 7 correlations and betas.
        assert count_rows(conn, "SY10", "rsi_14 = 50 and history_days <= 70") == 70 - 14
        assert count_rows(conn, "SY10", "correlation_63d = 0 and beta_63d = 0") == 70 - 63
        # SY11 closed at one price 31 times running, the last 30 without a trade: 12 bands of zero width, 11
        # runs of 20 zero volumes.
        assert count_rows(conn, "SY11", "bollinger_percent_b = 0.5") == 31 - 19
        assert count_rows(conn, "SY11", "volume_zscore_20d = 0") == 30 - 19
        clean = check_features(conn, window, results_dir=tmp_path)

        # Defects where the maths is defined: a null in the flat stretch, an infinite beta, a row gone.
        conn.execute(
            f"update {FEATURES_TABLE} set bollinger_percent_b = null where symbol = 'SY11' and date = %s",
            (dates[175],),
        )
        conn.execute(
            f"update {FEATURES_TABLE} set beta_63d = 'Infinity' where symbol = 'SY05' and date = %s",
            (dates[-2],),
        )
        conn.execute(f"delete from {FEATURES_TABLE} where symbol = 'SY04' and date = %s", (dates[200],))
        broken = check_features(conn, window, results_dir=tmp_path)
        conn.rollback()

    assert clean.passed, clean.failing_rules
    assert clean.rows == len(market.bars) and not clean.reported
    assert broken.failing_rules == {
        "null_after_warmup[bollinger_percent_b]": 1,
        "out_of_range[beta_63d]": 1,
        "missing_rows": 1,
    }
