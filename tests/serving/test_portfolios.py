"""Portfolios on the real app and warehouse: the ledger's rules, the CSV import, positions and analytics (in a
fixed number of statements, cached per version), another user's portfolio answering 404, and the GDPR
export and erasure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from stockyard.db.catalogue import APP_SCHEMA, metadata
from tests.serving.support import V1, StatementCounter, Warehouse, new_account


def _priced(warehouse: Warehouse) -> list[str]:
    """Symbols with prices all through the market's year (some of the sample's list later, or never)."""
    with psycopg.connect(warehouse.url) as conn:
        rows = conn.execute(
            "select symbol from marts.dim_stocks where first_date <= '2023-01-31' and last_date = %s"
            " order by symbol",
            (warehouse.latest_date,),
        ).fetchall()
    return [symbol for (symbol,) in rows]


def _portfolio(client: TestClient, headers: dict[str, str], name: str = "core") -> int:
    response = client.post(f"{V1}/portfolios", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    return int(response.json()["portfolio_id"])


def _buy(symbol: str, day: date, quantity: float = 10, price: float = 50) -> dict[str, object]:
    return {"kind": "buy", "trade_date": str(day), "symbol": symbol, "quantity": quantity, "price": price}


def _add(client: TestClient, headers: dict[str, str], portfolio_id: int, body: dict[str, object]) -> int:
    response = client.post(f"{V1}/portfolios/{portfolio_id}/transactions", json=body, headers=headers)
    return response.status_code


def test_the_ledger_rules_refuse_bad_transactions_and_keep_nothing(
    accounts_client: TestClient, api_warehouse: Warehouse
) -> None:
    _, headers = new_account(accounts_client, "rules")
    portfolio_id = _portfolio(accounts_client, headers)
    symbol, day = api_warehouse.symbols[0], date(2023, 3, 1)
    assert _add(accounts_client, headers, portfolio_id, _buy(symbol, day)) == 201
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    malformed = {
        "future date": _buy(symbol, tomorrow),
        "unknown symbol": _buy("NOPE", day),
        "negative quantity": _buy(symbol, day, quantity=-1),
        "cash with a symbol": {"kind": "cash_in", "trade_date": str(day), "amount": 5, "symbol": symbol},
        "a buy with an amount": {**_buy(symbol, day), "amount": 500},
        "a date as a number": {**_buy(symbol, day), "trade_date": 0},
    }
    for name, body in malformed.items():
        assert _add(accounts_client, headers, portfolio_id, body) == 422, name
    # Well-formed, but the ledger so far refuses them: a conflict with its state.
    conflicting = {
        "oversold": {**_buy(symbol, day + timedelta(days=1), quantity=11), "kind": "sell"},
        "sold before bought": {**_buy(symbol, day - timedelta(days=1), quantity=1), "kind": "sell"},
        "cash out of nothing": {"kind": "cash_out", "trade_date": str(day), "amount": 10_000},
    }
    for name, body in conflicting.items():
        assert _add(accounts_client, headers, portfolio_id, body) == 409, name
    transactions = accounts_client.get(f"{V1}/portfolios/{portfolio_id}/transactions", headers=headers).json()
    assert len(transactions) == 1
    # Deleting the buy would leave nothing to have sold: refused once a sale depends on it.
    assert (
        _add(accounts_client, headers, portfolio_id, {**_buy(symbol, day, quantity=4), "kind": "sell"}) == 201
    )
    deleted = accounts_client.delete(
        f"{V1}/portfolios/{portfolio_id}/transactions/{transactions[0]['transaction_id']}", headers=headers
    )
    assert deleted.status_code == 409 and "sells 4" in deleted.json()["detail"]
    # `import` is not a transaction id: the import's path, where DELETE is not allowed.
    wrong_method = accounts_client.delete(
        f"{V1}/portfolios/{portfolio_id}/transactions/import", headers=headers
    )
    assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"


def test_a_broker_csv_imports_all_or_nothing(accounts_client: TestClient, api_warehouse: Warehouse) -> None:
    _, headers = new_account(accounts_client, "csv")
    portfolio_id = _portfolio(accounts_client, headers)
    first, second = _priced(api_warehouse)[:2]
    good = (
        "Date,Action,Symbol,Quantity,Price,Commission,Amount\n"
        '03/01/2023,Deposit,,,,,"10,000.00"\n'
        f"2023-03-01,Buy,{first},10,50.5,1.0,\n"
        f"2023-03-02,BOUGHT,{second.lower()},5,20,,\n"
        f"2023-06-01,Sold,{first},-4,55,1.0,\n"
        f"2023-06-15,Dividend,{second},,,,12.5\n"
    )
    bad = good + f"2023-06-20,Sell,{second},50,20,,\n2023-06-21,Transfer,,,,,1\n"
    url = f"{V1}/portfolios/{portfolio_id}/transactions/import"

    refused = accounts_client.post(url, files={"file": ("bad.csv", bad, "text/csv")}, headers=headers)
    assert refused.status_code == 422 and "line 8: unknown action 'transfer'" in refused.json()["detail"]
    assert accounts_client.get(f"{V1}/portfolios/{portfolio_id}/transactions", headers=headers).json() == []

    imported = accounts_client.post(url, files={"file": ("good.csv", good, "text/csv")}, headers=headers)
    assert imported.status_code == 201, imported.text
    assert imported.json()["imported"] == 5 and imported.json()["portfolio"]["version"] == 2
    positions = accounts_client.get(f"{V1}/portfolios/{portfolio_id}/positions", headers=headers).json()
    assert {item["symbol"]: item["shares"] for item in positions["positions"]} == {first: 6, second: 5}
    assert positions["cash"] == 10_000 - 505 - 1 - 100 + 220 - 1 + 12.5
    assert abs(sum(item["weight"] for item in positions["positions"]) - 1) < 1e-9


def test_analytics_in_a_fixed_number_of_statements_cached_per_version(
    accounts_client: TestClient, api_warehouse: Warehouse
) -> None:
    _, headers = new_account(accounts_client, "analyst")
    engine = accounts_client.app.state.services.engine.sync_engine  # type: ignore[attr-defined]
    counts = {}
    for holdings in (2, 12):
        portfolio_id = _portfolio(accounts_client, headers, f"{holdings} holdings")
        for number, symbol in enumerate(_priced(api_warehouse)[:holdings]):
            assert (
                _add(accounts_client, headers, portfolio_id, _buy(symbol, date(2023, 2, 1 + number))) == 201
            )
        counter = StatementCounter()
        event.listen(engine, "before_cursor_execute", counter)
        try:
            response = accounts_client.get(f"{V1}/portfolios/{portfolio_id}/analytics", headers=headers)
        finally:
            event.remove(engine, "before_cursor_execute", counter)
        assert response.status_code == 200, response.text
        assert (
            response.headers["X-Cache"] == "miss" and response.headers["Cache-Control"] == "private, no-store"
        )
        counts[holdings] = len([s for s in counter.statements if not s.lower().startswith("select pg_")])
        body = response.json()
        assert body["value_history"][-1]["date"] == str(api_warehouse.latest_date)
        assert body["statistics"]["days"] > 100 and body["statistics"]["beta"] is not None
        assert len(body["correlation"]) == holdings
        assert abs(sum(body["sector_exposure"].values()) - 1) < 1e-9
        assert body["concentration"]["top_n"] == 5
    assert counts[2] == counts[12] <= 7, counts

    again = accounts_client.get(f"{V1}/portfolios/{portfolio_id}/analytics", headers=headers)
    assert again.headers["X-Cache"].startswith("hit") and again.json() == body
    _add(
        accounts_client,
        headers,
        portfolio_id,
        {"kind": "cash_in", "trade_date": "2023-09-01", "amount": 1000},
    )
    changed = accounts_client.get(f"{V1}/portfolios/{portfolio_id}/analytics", headers=headers)
    assert changed.headers["X-Cache"] == "miss" and changed.json()["version"] == body["version"] + 1


def test_shares_held_across_a_split_are_split_like_a_brokers(
    accounts_client: TestClient, api_warehouse: Warehouse
) -> None:
    client = accounts_client
    priced = _priced(api_warehouse)
    with psycopg.connect(api_warehouse.url) as conn:
        # The market's first split without a dividend on its ex-date (a 4-for-1 in the fixture).
        symbol, ex_date, ratio, sector = conn.execute(
            "select a.symbol, a.ex_date, a.split_ratio, s.sector from marts.fct_corporate_actions a"
            " join marts.dim_stocks s using (symbol)"
            " where a.split_ratio <> 1 and a.cash_dividend = 0 and a.symbol = any(%s)"
            " order by a.ex_date, a.symbol limit 1",
            (priced,),
        ).fetchone()  # type: ignore[misc]
        bars = conn.execute(
            "select date, close, return_1d from marts.fct_daily_prices where symbol = %s and date <= %s"
            " order by date desc limit 2",
            (symbol, ex_date),
        ).fetchall()
        (on_ex_date, close_after, split_day_return), (day_before, close_before, _) = bars
        other, other_sector = conn.execute(
            "select symbol, sector from marts.dim_stocks where sector <> %s and symbol = any(%s)"
            " order by symbol",
            (sector, priced),
        ).fetchone()  # type: ignore[misc]
    assert on_ex_date == ex_date
    _, headers = new_account(client, "splits")
    portfolio_id = _portfolio(client, headers)
    held_after_split = 100 * ratio
    bought = _buy(symbol, day_before, quantity=100, price=close_before)
    assert _add(client, headers, portfolio_id, bought) == 201

    # A broker's file records the sale after the split in post-split shares: all of them, and not one more.
    sale = {**_buy(symbol, ex_date, quantity=held_after_split + 1, price=close_after), "kind": "sell"}
    refused = client.post(f"{V1}/portfolios/{portfolio_id}/transactions", json=sale, headers=headers)
    assert refused.status_code == 409 and f"only {held_after_split:g} are held" in refused.json()["detail"]
    assert _add(client, headers, portfolio_id, {**sale, "quantity": held_after_split / 2}) == 201
    assert _add(client, headers, portfolio_id, _buy(other, api_warehouse.latest_date, quantity=1)) == 201

    positions = client.get(f"{V1}/portfolios/{portfolio_id}/positions", headers=headers).json()
    by_symbol = {item["symbol"]: item for item in positions["positions"]}
    assert by_symbol[symbol]["shares"] == held_after_split / 2
    assert by_symbol[symbol]["market_value"] == held_after_split / 2 * by_symbol[symbol]["close"]

    history = client.get(f"{V1}/portfolios/{portfolio_id}/analytics", headers=headers).json()["value_history"]
    value = {point["date"]: point for point in history}
    assert value[str(ex_date)]["total_value"] == pytest.approx(held_after_split * close_after)
    # Sold at the close: the ex-date's return is the stock's own (split-adjusted), not a drop to 1/ratio.
    growth = {day: 1 + point["cumulative_return"] for day, point in value.items()}
    assert growth[str(ex_date)] / growth[str(day_before)] - 1 == pytest.approx(split_day_return)

    # The personal recommendations weigh the sectors by the same values.
    exposure = client.get(f"{V1}/me/recommendations", headers=headers).json()["sector_exposure"]
    weights = {sector: by_symbol[symbol]["weight"], other_sector: by_symbol[other]["weight"]}
    assert exposure == pytest.approx(weights)


def test_another_users_portfolio_answers_404_and_stays_unchanged(
    accounts_client: TestClient, api_warehouse: Warehouse
) -> None:
    _, owner = new_account(accounts_client, "owner")
    _, intruder = new_account(accounts_client, "intruder")
    portfolio_id = _portfolio(accounts_client, owner)
    assert _add(accounts_client, owner, portfolio_id, _buy(api_warehouse.symbols[0], date(2023, 3, 1))) == 201
    (transaction,) = accounts_client.get(f"{V1}/portfolios/{portfolio_id}/transactions", headers=owner).json()
    base = f"{V1}/portfolios/{portfolio_id}"
    attempts = [
        ("GET", base, None),
        ("PATCH", base, {"name": "stolen"}),
        ("DELETE", base, None),
        ("GET", f"{base}/transactions", None),
        ("POST", f"{base}/transactions", _buy(api_warehouse.symbols[1], date(2023, 3, 2))),
        ("DELETE", f"{base}/transactions/{transaction['transaction_id']}", None),
        ("GET", f"{base}/positions", None),
        ("GET", f"{base}/analytics", None),
    ]
    for method, url, body in attempts:
        response = accounts_client.request(method, url, json=body, headers=intruder)
        assert response.status_code == 404, (method, url, response.status_code)
    assert accounts_client.get(f"{V1}/portfolios", headers=intruder).json() == []
    assert accounts_client.get(base, headers=owner).json()["name"] == "core"
    assert len(accounts_client.get(f"{base}/transactions", headers=owner).json()) == 1


WATCHLIST_TABLES = ("watchlists", "watchlist_items", "screens", "alerts", "hits")


def _rows_referencing(conn: psycopg.Connection, user_id: int, email: str) -> dict[str, int]:
    """Rows of every app table that name the user, by id or by email."""
    found = {}
    for table in metadata.sorted_tables:
        if table.schema != APP_SCHEMA:
            continue
        name = f"{table.schema}.{table.name}"
        conditions = []
        if "user_id" in table.columns:
            conditions.append(f"user_id = {int(user_id)}")
        if "changed_by" in table.columns:
            conditions.append(f"changed_by = {int(user_id)}")
        if "portfolio_id" in table.columns and table.name != "portfolios":
            conditions.append(
                f"portfolio_id in (select portfolio_id from app.portfolios where user_id = {user_id})"
            )
        conditions.append(f"strpos(t::text, '{email}') > 0")
        (count,) = conn.execute(
            f"select count(*) from {name} as t where {' or '.join(conditions)}"
        ).fetchone()  # type: ignore[misc]
        found[name] = count
    return found


def test_gdpr_export_holds_every_row_and_erasure_leaves_none(
    accounts_client: TestClient, api_warehouse: Warehouse
) -> None:
    user_id, headers = new_account(accounts_client, "gdpr")
    email = accounts_client.get(f"{V1}/me", headers=headers).json()["email"]
    portfolio_id = _portfolio(accounts_client, headers)
    _add(accounts_client, headers, portfolio_id, _buy(api_warehouse.symbols[0], date(2023, 3, 1)))

    exported = accounts_client.get(f"{V1}/me/export", headers=headers)
    assert exported.status_code == 200
    data = exported.json()["data"]
    with psycopg.connect(api_warehouse.url) as conn:
        held = _rows_referencing(conn, user_id, email)
    exported_counts = {
        "app.users": len(data["user"]),
        "app.refresh_tokens": len(data["sessions"]),
        "app.portfolios": len(data["portfolios"]),
        "app.transactions": len(data["transactions"]),
        # The export itself is audited after it was made.
        "app.audit_log": len(data["audit_log"]) + 1,
        # Only an admin's (tests/serving/test_accounts.py changes some).
        "app.symbol_overrides": len(data["symbol_overrides"]),
        # Made by tests/serving/test_watchlists.py, which exports and erases them too.
        **{f"app.{name}": len(data[name]) for name in WATCHLIST_TABLES},
    }
    assert held == exported_counts
    not_made_here = {"app.symbol_overrides", *(f"app.{name}" for name in WATCHLIST_TABLES)}
    assert all(count for table, count in held.items() if table not in not_made_here)
    assert "password_hash" not in data["user"][0]

    assert accounts_client.delete(f"{V1}/me", headers=headers).status_code == 204
    with psycopg.connect(api_warehouse.url) as conn:
        assert set(_rows_referencing(conn, user_id, email).values()) == {0}
        pseudonyms = conn.execute(
            "select count(*), count(distinct pseudonym), count(client_ip) from app.audit_log"
            " where target = %s",
            (f"user:{user_id}",),
        ).fetchone()
    assert pseudonyms is not None and pseudonyms[0] >= 2 and pseudonyms[1] == 1 and pseudonyms[2] == 0
    assert accounts_client.get(f"{V1}/me", headers=headers).status_code == 401
