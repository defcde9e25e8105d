"""Run every quality suite on what a warehouse holds for a date window, and print what each found.

    python -m stockyard.quality.report --database-url URL --start 2024-01-02 --end 2024-03-28

The same suites the Dagster checks run: raw bars (row rules and quarantine, plausibility), corporate actions,
the stock universe, and the features when marts.fct_stock_features exists. Exits with 1 when an ERROR-level
check fails. Thresholds come from the STOCKYARD_QUALITY_* settings; GE results are saved under --results-dir.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import LiteralString, cast

import pandas as pd
import psycopg

from stockyard.quality.features import FEATURES_TABLE, check_features
from stockyard.quality.metadata import check_metadata, check_sector_names
from stockyard.quality.raw import (
    check_action_rows,
    check_price_plausibility,
    check_price_rows,
    check_served_symbols,
)
from stockyard.quality.recommendations import check_recommendations
from stockyard.quality.results import QualityResult, Severity, Window
from stockyard.quality.settings import get_quality_settings
from stockyard.settings import get_services_settings

SHOWN_ROWS = 3


def run_all(
    conn: psycopg.Connection, window: Window, *, results_dir: Path, recommendations_table: str | None = None
) -> list[QualityResult]:
    settings = get_quality_settings()
    results = [
        check_price_rows(conn, window, settings=settings, results_dir=results_dir),
        check_price_plausibility(conn, window, settings=settings, results_dir=results_dir),
        check_served_symbols(conn, window, results_dir=results_dir),
        check_action_rows(conn, window, settings=settings, results_dir=results_dir),
        check_metadata(conn, results_dir=results_dir),
        check_sector_names(conn, results_dir=results_dir),
    ]
    if _table(conn, FEATURES_TABLE) is not None:
        results.append(check_features(conn, window, results_dir=results_dir))
    if recommendations_table is not None:
        # PostgreSQL's own spelling of a table that exists: a command-line name never reaches SQL as typed.
        table = _table(conn, recommendations_table)
        if table is None:
            raise SystemExit(f"no table {recommendations_table}")
        results.append(check_recommendations(conn, window, table=table, results_dir=results_dir))
    return results


def describe(result: QualityResult) -> str:
    """A few lines per check: its outcome, per-rule counts, a sample of each failing rule, the GE results."""
    outcome = "PASS" if result.passed else ("FAIL" if result.severity is Severity.ERROR else "WARN")
    lines = [
        f"{outcome:4}  {result.name}: {result.rows:,} rows"
        + (f" in {result.window}" if result.window else "")
    ]
    if result.detail:
        lines.append(f"      {result.detail}")
    quarantine = result.quarantine
    if quarantine is not None:
        counts = ", ".join(f"{rule} {count:,}" for rule, count in quarantine.by_rule.items()) or "none"
        total = quarantine.loaded + quarantine.quarantined
        lines.append(
            f"      quarantined {quarantine.quarantined:,} of {total:,} rows "
            f"({quarantine.share:.3%}, limit {quarantine.max_share:.2%}): {counts}"
        )
    for label, findings in (("", result.findings), ("reported, not failing: ", result.reported)):
        for finding in findings:
            if finding.failing:
                lines.append(
                    f"      {label}{finding.rule}: {finding.failing:,} row(s) - "
                    f"{finding.error or finding.description}"
                )
                sample = finding.sample.head(SHOWN_ROWS).to_string(index=False)
                lines += [f"          {line}" for line in sample.splitlines()]
    lines += [f"      {key}: {value}" for key, value in result.metrics.items()]
    if result.results_path is not None:
        lines.append(f"      GE results: {result.results_path}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--start", required=True, type=date.fromisoformat, help="first date, YYYY-MM-DD")
    parser.add_argument("--end", required=True, type=date.fromisoformat, help="last date, YYYY-MM-DD")
    parser.add_argument(
        "--results-dir", type=Path, default=None, help="default: STOCKYARD_SERVICES_STATE_DIR/quality"
    )
    parser.add_argument("--recommendations-table", default=None, help="e.g. products.recommendations")
    args = parser.parse_args(argv)
    results_dir = args.results_dir or get_services_settings().state_dir / "quality"
    pd.set_option("display.width", 200)
    with psycopg.connect(args.database_url) as conn:
        results = run_all(
            conn,
            Window.of(args.start, args.end),
            results_dir=results_dir,
            recommendations_table=args.recommendations_table,
        )
    for result in results:
        print(describe(result), end="\n\n")
    failed = [result.name for result in results if not result.passed and result.severity is Severity.ERROR]
    print(f"{len(results)} checks, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _table(conn: psycopg.Connection, name: str) -> LiteralString | None:
    row = conn.execute("select to_regclass(%s)::text", (name,)).fetchone()
    return cast(LiteralString, row[0]) if row and row[0] else None


if __name__ == "__main__":
    sys.exit(main())
