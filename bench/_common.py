"""Helpers shared by the benchmark scripts: the real data set, a scratch database, peak memory."""

from __future__ import annotations

import resource
import tarfile
from pathlib import Path

import psycopg
from psycopg import sql

from stockyard.db.migrate import upgrade
from stockyard.settings import PROJECT_ROOT

REAL_DATA_ARCHIVE = PROJECT_ROOT.parent / "shared" / "data" / "sp500_daily_adjusted_1999_2021.tar.gz"
UNPACKED = PROJECT_ROOT / ".stockyard" / "data" / "sp500"


def real_data_dir(archive: Path = REAL_DATA_ARCHIVE) -> Path:
    """The unpacked S&P 500 Alpha Vantage files (unpacked once, next to the project's other state)."""
    target = UNPACKED / "daily_adjusted"
    if not target.exists():
        if not archive.exists():
            raise SystemExit(f"the real data set is not here: {archive} (benchmarks need it; tests do not)")
        UNPACKED.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            tar.extractall(UNPACKED, filter="data")
    return target


def constituents_csv() -> Path:
    return next(UNPACKED.rglob("constituents.csv"))


def scratch_database(server_url: str, name: str) -> str:
    """A fresh database `name` on the server with the application's tables (dropped first if a previous run
    left it)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return url


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
