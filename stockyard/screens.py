"""Saved screens and alerts: their conditions as data, compiled to SQLAlchemy expressions, and the evaluation
after each data refresh that stores their hits (the alert_hits asset; the API runs a screen on demand).

A screen is a list of conditions a symbol must all meet on a data date, each `{"field", "op", "value"}`:
the field is one of the features of marts.fct_stock_features (stockyard.features, with their `_rank`
columns), the close, the day's recommendation's figures and action, the sector or the symbol; the operator
one of OPERATORS, and the value a number, or text for the text fields. Nothing else is accepted, and values
only ever reach the database as bound parameters: a screen cannot name a table, a function or SQL of any kind.

An alert watches one symbol: `price_above` / `price_below` fire on the date its close crosses the level
(from the other side on the trading date before), `enters_top` on the date its recommendation's rank enters
the top N. The functions take a SQLAlchemy Connection: the asset's own, or the API's async one through
`run_sync`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.sql import TableClause, column, table

from stockyard.db.catalogue import alerts, hits, recommendations, screens
from stockyard.features import RANK_SUFFIX, stock_features

MARTS_SCHEMA = "marts"
MAX_CONDITIONS = 20
MAX_LISTED_VALUES = 100
ACTIONS = ("buy", "hold", "sell")

Operator = Literal["<", "<=", ">", ">=", "=", "!=", "in"]
OPERATORS: tuple[str, ...] = ("<", "<=", ">", ">=", "=", "!=", "in")
_COMPARE: dict[str, Callable[[ColumnElement[Any], Any], ColumnElement[bool]]] = {
    "<": lambda field, value: field < value,
    "<=": lambda field, value: field <= value,
    ">": lambda field, value: field > value,
    ">=": lambda field, value: field >= value,
    "=": lambda field, value: field == value,
    "!=": lambda field, value: field != value,
    "in": lambda field, value: field.in_(value),
}
NUMBER_OPERATORS = ("<", "<=", ">", ">=", "=", "!=")
TEXT_OPERATORS = ("=", "!=", "in")


# The marts columns the screens read: dbt makes these tables, the feature list is stockyard.features'.
def _features_table() -> TableClause:
    names = [feature.name for feature in stock_features()]
    ranks = [f"{feature.name}{RANK_SUFFIX}" for feature in stock_features() if feature.ranked]
    return table(
        "fct_stock_features",
        column("symbol"),
        column("date"),
        *(column(name) for name in names + ranks),
        schema=MARTS_SCHEMA,
    )


_stocks = table("dim_stocks", column("symbol"), column("sector"), schema=MARTS_SCHEMA)
_prices = table("fct_daily_prices", column("symbol"), column("date"), column("close"), schema=MARTS_SCHEMA)
_RECOMMENDATION_FIELDS = ("rank", "percentile", "score", "expected_excess_return", "confidence")


@dataclass(frozen=True)
class Fields:
    features: TableClause
    numbers: dict[str, ColumnElement[Any]]
    texts: dict[str, ColumnElement[Any]]

    def column(self, name: str) -> ColumnElement[Any]:
        return self.numbers[name] if name in self.numbers else self.texts[name]


@cache
def known_fields() -> Fields:
    """Every field a condition may name, as the column it reads (features, recommendations, prices,
    stocks)."""
    features = _features_table()
    numbers: dict[str, ColumnElement[Any]] = {
        col.name: col for col in features.columns if col.name not in ("symbol", "date")
    }
    numbers["close"] = _prices.c.close
    numbers.update({name: recommendations.c[name] for name in _RECOMMENDATION_FIELDS})
    texts: dict[str, ColumnElement[Any]] = {
        "symbol": features.c.symbol,
        "sector": _stocks.c.sector,
        "action": recommendations.c.action,
    }
    return Fields(features=features, numbers=numbers, texts=texts)


Text = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class Condition(BaseModel):
    """One test a symbol must pass: `{"field": "rsi_14", "op": "<", "value": 30}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(
        description="A feature (e.g. rsi_14, return_21d_rank), close, a recommendation's "
        "rank, percentile, score, expected_excess_return, confidence or action, sector, symbol."
    )
    op: Operator
    value: float | Text | list[Text] = Field(
        description="A number for the numeric fields; text, or a list of text for `in`, for action, sector "
        "and symbol."
    )

    @model_validator(mode="after")
    def _fits_the_field(self) -> Condition:
        fields = known_fields()
        if self.field in fields.numbers:
            if self.op not in NUMBER_OPERATORS:
                raise ValueError(
                    f"field {self.field!r} is a number: use one of {', '.join(NUMBER_OPERATORS)}, "
                    f"not {self.op!r}"
                )
            if isinstance(self.value, bool) or not isinstance(self.value, int | float):
                raise ValueError(
                    f"field {self.field!r} is a number: its value must be one, not {self.value!r}"
                )
            if not math.isfinite(self.value):
                raise ValueError(f"field {self.field!r}: the value must be a finite number")
            return self
        if self.field in fields.texts:
            if self.op not in TEXT_OPERATORS:
                raise ValueError(
                    f"field {self.field!r} is text: use one of {', '.join(TEXT_OPERATORS)}, not {self.op!r}"
                )
            listed = self.op == "in"
            if listed != isinstance(self.value, list):
                raise ValueError(
                    f"field {self.field!r}: 'in' takes a list of text, '=' and '!=' one text value"
                )
            values: list[Any] = list(self.value) if isinstance(self.value, list) else [self.value]
            if not values or len(values) > MAX_LISTED_VALUES or not all(isinstance(v, str) for v in values):
                raise ValueError(
                    f"field {self.field!r}: between 1 and {MAX_LISTED_VALUES} text values, got {self.value!r}"
                )
            if self.field == "action" and any(value not in ACTIONS for value in values):
                raise ValueError(f"field 'action': the actions are {', '.join(ACTIONS)}")
            return self
        raise ValueError(
            f"unknown field {self.field!r}: the fields are the features of {FEATURES_HELP}, close, "
            f"{', '.join(_RECOMMENDATION_FIELDS)}, action, sector and symbol"
        )

    def expression(self) -> ColumnElement[bool]:
        target = known_fields().column(self.field)
        value = self.value
        if self.field == "symbol":
            value = [item.upper() for item in value] if isinstance(value, list) else str(value).upper()
        return _COMPARE[self.op](target, value)


FEATURES_HELP = "marts.fct_stock_features (GET /api/v1/screens/fields lists them)"


class ScreenConditions(BaseModel):
    """What a screen stores: the conditions a symbol must all meet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conditions: list[Condition] = Field(min_length=1, max_length=MAX_CONDITIONS)


def field_names() -> dict[str, list[str]]:
    """The fields conditions may name, by kind."""
    fields = known_fields()
    return {"number": sorted(fields.numbers), "text": sorted(fields.texts)}


# --- running a screen ---------------------------------------------------------------------------------------


def latest_data_date(conn: Connection) -> date | None:
    """The latest date of the features: the data date the screens and alerts are evaluated on."""
    features = known_fields().features
    return conn.execute(select(func.max(features.c.date))).scalar_one_or_none()


def previous_trading_date(conn: Connection, day: date) -> date | None:
    return conn.execute(select(func.max(_prices.c.date)).where(_prices.c.date < day)).scalar_one_or_none()


def match_statement(conditions: Sequence[Condition], day: date, *, limit: int | None = None) -> Select[Any]:
    """The symbols meeting every condition on `day`, with the values of the fields the conditions name."""
    fields = known_fields()
    features = fields.features
    named = dict.fromkeys(condition.field for condition in conditions)
    shown = [fields.column(name).label(name) for name in named if name != "symbol"]
    statement = (
        select(features.c.symbol, *shown)
        .select_from(
            features.outerjoin(_stocks, _stocks.c.symbol == features.c.symbol)
            .outerjoin(
                _prices, and_(_prices.c.symbol == features.c.symbol, _prices.c.date == features.c.date)
            )
            .outerjoin(
                recommendations,
                and_(
                    recommendations.c.symbol == features.c.symbol, recommendations.c.date == features.c.date
                ),
            )
        )
        .where(features.c.date == day, *(condition.expression() for condition in conditions))
        .order_by(features.c.symbol)
    )
    return statement.limit(limit) if limit is not None else statement


def matches(
    conn: Connection, conditions: Sequence[Condition], day: date, *, limit: int | None = None
) -> list[dict[str, Any]]:
    """Each matching symbol with the values that met the conditions, by symbol."""
    return [dict(row) for row in conn.execute(match_statement(conditions, day, limit=limit)).mappings()]


# --- the evaluation after a refresh -------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    hit_id: int
    user_id: int
    screen_id: int | None
    alert_id: int | None
    name: str
    data_date: date
    symbol: str
    detail: dict[str, Any]

    def message(self) -> dict[str, Any]:
        """What the owner's websocket receives."""
        source = "screen" if self.screen_id is not None else "alert"
        return {
            "type": "hit",
            "hit_id": self.hit_id,
            "source": source,
            f"{source}_id": self.screen_id if self.screen_id is not None else self.alert_id,
            "name": self.name,
            "data_date": self.data_date.isoformat(),
            "symbol": self.symbol,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Evaluation:
    data_date: date | None
    screens: int
    alerts: int
    new_hits: list[Hit]
    # Stored screens whose conditions no longer validate (a feature dbt dropped): skipped, named here.
    invalid_screens: dict[int, str]


def _json_ready(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, date) else value for key, value in row.items()}


def _store(conn: Connection, found: list[dict[str, Any]], names: dict[tuple[str, int], str]) -> list[Hit]:
    """Insert `found` hits; those stored before (an evaluation run again) are left, and not returned."""
    if not found:
        return []
    statement = (
        insert(hits)
        .values(found)
        .on_conflict_do_nothing(constraint="hits_screen_id_alert_id_data_date_symbol_key")
        .returning(
            hits.c.hit_id,
            hits.c.user_id,
            hits.c.screen_id,
            hits.c.alert_id,
            hits.c.data_date,
            hits.c.symbol,
            hits.c.detail,
        )
    )
    stored = []
    for row in conn.execute(statement).mappings():
        key = ("screen", row["screen_id"]) if row["screen_id"] is not None else ("alert", row["alert_id"])
        stored.append(Hit(name=names[key], **row))
    return sorted(stored, key=lambda hit: hit.hit_id)


def screen_hits(
    conn: Connection, day: date
) -> tuple[int, list[dict[str, Any]], dict[tuple[str, int], str], dict[int, str]]:
    """(screens run, hits found, names of their screens, invalid screens and why) on `day`: one statement per
    active screen."""
    found: list[dict[str, Any]] = []
    names: dict[tuple[str, int], str] = {}
    invalid: dict[int, str] = {}
    active = conn.execute(
        select(screens.c.screen_id, screens.c.user_id, screens.c.name, screens.c.conditions)
        .where(screens.c.is_active)
        .order_by(screens.c.screen_id)
    ).mappings()
    count = 0
    for screen in list(active):
        try:
            definition = ScreenConditions.model_validate({"conditions": screen["conditions"]})
        except ValueError as error:
            invalid[screen["screen_id"]] = str(error)
            continue
        count += 1
        names[("screen", screen["screen_id"])] = screen["name"]
        for match in matches(conn, definition.conditions, day):
            symbol = match.pop("symbol")
            found.append(
                {
                    "user_id": screen["user_id"],
                    "screen_id": screen["screen_id"],
                    "alert_id": None,
                    "data_date": day,
                    "symbol": symbol,
                    "detail": _json_ready(match),
                }
            )
    return count, found, names, invalid


def alert_statement(day: date, previous: date) -> Select[Any]:
    """Every active alert that fires on `day` (the trading date before it being `previous`), with what set it
    off."""
    today = _prices.alias("today")
    before = _prices.alias("before")
    rank_today = recommendations.alias("rank_today")
    rank_before = recommendations.alias("rank_before")
    price_alert = alerts.c.kind.in_(("price_above", "price_below"))
    crossed = or_(
        and_(
            alerts.c.kind == "price_above", before.c.close < alerts.c.level, today.c.close >= alerts.c.level
        ),
        and_(
            alerts.c.kind == "price_below", before.c.close > alerts.c.level, today.c.close <= alerts.c.level
        ),
    )
    entered = and_(
        alerts.c.kind == "enters_top",
        rank_today.c.rank <= alerts.c.top_n,
        or_(rank_before.c.rank.is_(None), rank_before.c.rank > alerts.c.top_n),
    )
    return (
        select(
            alerts.c.alert_id,
            alerts.c.user_id,
            alerts.c.kind,
            alerts.c.symbol,
            alerts.c.level,
            alerts.c.top_n,
            today.c.close.label("close"),
            before.c.close.label("previous_close"),
            rank_today.c.rank.label("rank"),
            rank_before.c.rank.label("previous_rank"),
        )
        .select_from(
            alerts.outerjoin(today, and_(today.c.symbol == alerts.c.symbol, today.c.date == literal(day)))
            .outerjoin(before, and_(before.c.symbol == alerts.c.symbol, before.c.date == literal(previous)))
            .outerjoin(
                rank_today, and_(rank_today.c.symbol == alerts.c.symbol, rank_today.c.date == literal(day))
            )
            .outerjoin(
                rank_before,
                and_(rank_before.c.symbol == alerts.c.symbol, rank_before.c.date == literal(previous)),
            )
        )
        .where(alerts.c.is_active, or_(and_(price_alert, crossed), entered))
        .order_by(alerts.c.alert_id)
    )


def alert_hits(conn: Connection, day: date) -> tuple[int, list[dict[str, Any]], dict[tuple[str, int], str]]:
    """(active alerts, hits found on `day`, their names): one statement for every alert."""
    active = conn.execute(select(func.count()).select_from(alerts).where(alerts.c.is_active)).scalar_one()
    previous = previous_trading_date(conn, day)
    if previous is None:
        return active, [], {}
    found, names = [], {}
    for row in conn.execute(alert_statement(day, previous)).mappings():
        if row["kind"] == "enters_top":
            detail = {"rank": row["rank"], "previous_rank": row["previous_rank"], "top_n": row["top_n"]}
            name = f"{row['symbol']} enters the top {row['top_n']}"
        else:
            detail = {"close": row["close"], "previous_close": row["previous_close"], "level": row["level"]}
            side = "above" if row["kind"] == "price_above" else "below"
            name = f"{row['symbol']} closes {side} {row['level']:g}"
        names[("alert", row["alert_id"])] = name
        found.append(
            {
                "user_id": row["user_id"],
                "screen_id": None,
                "alert_id": row["alert_id"],
                "data_date": day,
                "symbol": row["symbol"],
                "detail": detail,
            }
        )
    return active, found, names


def evaluate(conn: Connection, day: date | None = None) -> Evaluation:
    """Run every active screen and alert on `day` (the latest data date by default) and store their new hits,
    in the caller's transaction. Running a date again stores (and returns) nothing new."""
    day = day or latest_data_date(conn)
    if day is None:
        return Evaluation(data_date=None, screens=0, alerts=0, new_hits=[], invalid_screens={})
    screen_count, screen_found, names, invalid = screen_hits(conn, day)
    alert_count, alert_found, alert_names = alert_hits(conn, day)
    stored = _store(conn, screen_found + alert_found, {**names, **alert_names})
    return Evaluation(
        data_date=day, screens=screen_count, alerts=alert_count, new_hits=stored, invalid_screens=invalid
    )
