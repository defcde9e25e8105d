"""The recommendations suite: finite scores, ranks 1..n per date, one row per symbol and date."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from stockyard import warehouse
from stockyard.quality.recommendations import check_recommendations
from stockyard.quality.results import Window
from tests.support import throwaway_database

DATES = [date(2024, 3, 4), date(2024, 3, 5), date(2024, 3, 6)]
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]


def recommendations() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"symbol": symbol, "date": day, "score": 1.0 - rank / 10, "rank": rank}
            for day in DATES
            for rank, symbol in enumerate(SYMBOLS, start=1)
        ]
    )


@pytest.fixture
def conn() -> Iterator[psycopg.Connection]:
    with throwaway_database() as url, psycopg.connect(url) as connection:
        yield connection


def check(conn: psycopg.Connection, frame: pd.DataFrame, tmp_path: Path) -> dict[str, int]:
    conn.execute("create schema if not exists serving")
    conn.execute("drop table if exists serving.recommendations")
    conn.execute(
        "create table serving.recommendations (symbol text, date date, score double precision, rank integer)"
    )
    warehouse.copy_frame(conn, "serving.recommendations", frame, list(frame.columns))
    result = check_recommendations(
        conn, Window.of(DATES[0], DATES[-1]), table="serving.recommendations", results_dir=tmp_path
    )
    assert result.passed == (not result.failing_rules)
    return result.failing_rules


def test_well_formed_recommendations_pass(conn: psycopg.Connection, tmp_path: Path) -> None:
    assert check(conn, recommendations(), tmp_path) == {}


def test_each_recommendation_defect_fails_its_rule(conn: psycopg.Connection, tmp_path: Path) -> None:
    frame = recommendations()
    # First date: AAA twice, ranks still 1..5. Second: a NaN and an infinite score. Third: ranks 1, 2, 4, 5.
    first_aaa = frame.loc[(frame["date"] == DATES[0]) & (frame["symbol"] == "AAA")]
    frame = pd.concat([frame, first_aaa.assign(rank=5)], ignore_index=True)
    on = {day: frame["date"] == day for day in DATES}
    frame.loc[on[DATES[1]] & (frame["symbol"] == "BBB"), "score"] = np.nan
    frame.loc[on[DATES[1]] & (frame["symbol"] == "CCC"), "score"] = np.inf
    frame.loc[on[DATES[2]] & frame["rank"].ge(3), "rank"] += 1
    assert check(conn, frame, tmp_path) == {
        "duplicate_row": 2,
        "missing_score": 1,
        "non_finite_score": 1,
        "ranks_not_contiguous": 2,
    }
