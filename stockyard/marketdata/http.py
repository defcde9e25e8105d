"""The HTTP layer the web-service providers share: timeouts, retries with backoff, a request budget, and
detection of error bodies that arrive with HTTP 200.

Every error is a MarketDataError naming the symbol and the URL with the API key removed; the key's value is
also blanked out of any excerpt of a response body and of httpx's own request log lines.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypedDict

import httpx
import pandas as pd

from stockyard.marketdata.base import MarketDataProvider
from stockyard.marketdata.schema import METADATA_COLUMNS, MarketDataError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 20.0
DEFAULT_MAX_RETRIES = 4
DEFAULT_REQUEST_BUDGET = 500
BACKOFF_BASE_SECONDS = 1.0
#: Longest wait between attempts; a Retry-After asking for more gives up instead of retrying too early.
MAX_DELAY_SECONDS = 60.0
EXCERPT_CHARS = 160
#: Query parameters holding credentials: never shown in lineage, errors or logs.
SECRET_PARAMS = ("apikey",)
#: Alpha Vantage answers errors and rate limits with HTTP 200 and one of these keys instead of data.
MESSAGE_KEYS = ("Error Message", "Information", "Note")

# Transient failures worth another attempt; any other transport error is a configuration problem.
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_SECRET_QUERY = re.compile(rf"\b({'|'.join(SECRET_PARAMS)})=[^&\s\"']*")

Sleep = Callable[[float], None]


class _RedactSecretParams(logging.Filter):
    """httpx logs every request URL at INFO, query string included: blank the credentials out of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRET_QUERY.search(message):
            record.msg, record.args = _SECRET_QUERY.sub(r"\1=***", message), ()
        return True


logging.getLogger("httpx").addFilter(_RedactSecretParams())


class RequestBudget:
    """The most requests one provider may send (retries included), to stay inside a service's quota."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"a request budget cannot be negative, got {limit}")
        self.limit = limit
        self.used = 0

    @property
    def remaining(self) -> int:
        return self.limit - self.used

    def spend(self, provider: str, *, symbol: str | None = None) -> None:
        """Count one request; raises MarketDataError once the budget is used up."""
        if self.used >= self.limit:
            raise MarketDataError(
                f"the budget of {self.limit} requests for provider {provider} is used up", symbol=symbol
            )
        self.used += 1


@dataclass(frozen=True)
class _Request:
    """What an error message needs to know about a request: the symbol, the URL to show and what to hide."""

    symbol: str
    url: str
    secrets: tuple[str, ...] = field(repr=False)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def error(self, message: str, body: str | None = None) -> MarketDataError:
        if body is not None:
            message = f"{message}: {excerpt(body)!r}"
        return MarketDataError(self.redact(message), symbol=self.symbol, source=self.url)


@dataclass(frozen=True)
class Answer:
    """A successful response body and the request it answers."""

    request: _Request
    text: str

    @property
    def url(self) -> str:
        """The URL as requested, API key removed: what lineage and messages show."""
        return self.request.url

    def error(self, message: str, *, quote_body: bool = False) -> MarketDataError:
        return self.request.error(message, self.text if quote_body else None)

    @contextmanager
    def parsing(self) -> Iterator[None]:
        """Turn a surprise in the answer's shape into a MarketDataError for this symbol and URL."""
        try:
            yield
        except (AttributeError, KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as error:
            raise self.error(f"unexpected answer ({type(error).__name__}: {error})") from error


@dataclass(frozen=True)
class _Retry:
    """A failed attempt worth repeating: what went wrong, and how long the service asked us to wait."""

    problem: str
    retry_after: float | None = None


class ProviderHttp:
    """GET requests for one provider over an httpx.Client, with retries and the provider's request budget.

    Connect and read errors, HTTP 429 and 5xx are retried with exponential backoff and jitter (or after the
    Retry-After the service sends); other 4xx fail at once. `sleep` is injectable so tests do not wait.
    """

    def __init__(
        self,
        provider: str,
        *,
        client: httpx.Client | None,
        timeout: float,
        max_retries: int,
        budget: RequestBudget,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.provider = provider
        self.timeout = timeout
        self.max_retries = max_retries
        self.budget = budget
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(follow_redirects=True)
        self._sleep = sleep

    def close(self) -> None:
        """Close the client if this object created it (an injected client belongs to the caller)."""
        if self._owns_client:
            self._client.close()

    def get(self, url: str, params: Mapping[str, str], *, symbol: str) -> Answer:
        """The body of a successful GET; raises MarketDataError on failure or an HTML page instead of data."""
        full_url = httpx.URL(url, params=params)
        request = _Request(
            symbol=symbol,
            url=public_url(full_url),
            secrets=tuple(v for k, v in params.items() if k in SECRET_PARAMS and v),
        )
        attempt = 0
        while True:
            outcome = self._attempt(full_url, request)
            if isinstance(outcome, Answer):
                raise_for_html(outcome)
                return outcome
            if attempt == self.max_retries:
                raise request.error(f"{outcome.problem}, still failing after {attempt + 1} attempts")
            delay = self._delay(attempt, outcome, request)
            logger.warning(
                "%s: %s for %s (%s); retrying in %.1fs",
                self.provider,
                request.redact(outcome.problem),
                symbol,
                request.url,
                delay,
            )
            self._sleep(delay)
            attempt += 1

    def get_json(self, url: str, params: Mapping[str, str], *, symbol: str) -> tuple[Answer, dict[str, Any]]:
        """A successful GET's body decoded as a JSON object, with Alpha Vantage-style messages raised."""
        answer = self.get(url, params, symbol=symbol)
        return answer, json_object(answer)

    def _attempt(self, url: httpx.URL, request: _Request) -> Answer | _Retry:
        self.budget.spend(self.provider, symbol=request.symbol)
        try:
            response = self._client.get(url, timeout=self.timeout)
        except _RETRYABLE_ERRORS as error:
            return _Retry(f"{type(error).__name__}: {error}")
        except httpx.HTTPError as error:
            # `from None`: the chained httpx error holds the request, whose URL carries the API key.
            raise request.error(f"request failed ({type(error).__name__}: {error})") from None
        if response.is_success:
            return Answer(request, response.text)
        if response.status_code == 429 or response.is_server_error:
            return _Retry(
                f"HTTP {response.status_code}", _retry_after_seconds(response.headers.get("Retry-After"))
            )
        raise request.error(f"HTTP {response.status_code}", response.text)

    def _delay(self, attempt: int, retry: _Retry, request: _Request) -> float:
        if retry.retry_after is not None:
            if retry.retry_after > MAX_DELAY_SECONDS:
                raise request.error(
                    f"{retry.problem}, and the service asks to wait {retry.retry_after:.0f}s "
                    f"(more than {MAX_DELAY_SECONDS:.0f}s)"
                )
            return retry.retry_after
        # "Equal jitter": half the exponential step fixed, half random, so parallel clients spread out.
        step = min(MAX_DELAY_SECONDS, BACKOFF_BASE_SECONDS * 2.0**attempt)
        return step / 2 + random.uniform(0, step / 2)


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now; it is either a number of seconds or an HTTP date."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def public_url(url: httpx.URL) -> str:
    """The URL without its credential parameters."""
    for name in SECRET_PARAMS:
        url = url.copy_remove_param(name)
    return str(url)


def excerpt(body: str) -> str:
    """The start of a body on one line, short enough for an error message."""
    text = " ".join(body.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "..."


def raise_for_html(answer: Answer) -> None:
    """Services answer blocks and consent or proof-of-work pages as HTML with HTTP 200: judge by content."""
    if answer.text[:200].lstrip("\ufeff \t\r\n").lower().startswith(("<!doctype", "<html")):
        raise answer.error("expected CSV or JSON but got an HTML page", quote_body=True)


def json_object(answer: Answer) -> dict[str, Any]:
    """The body as a JSON object; an Alpha Vantage message object (error, rate limit) raises instead."""
    try:
        payload = json.loads(answer.text)
    except json.JSONDecodeError:
        raise answer.error("expected JSON", quote_body=True) from None
    if not isinstance(payload, dict):
        raise answer.error("expected a JSON object", quote_body=True)
    for key in MESSAGE_KEYS:
        if key in payload:
            raise answer.error(f"the service answered with {key!r} instead of data", quote_body=True)
    return payload


class HttpOptions(TypedDict, total=False):
    """Keyword arguments every HTTP provider accepts (see HttpProvider)."""

    client: httpx.Client | None
    timeout: float
    max_retries: int
    request_budget: int
    sleep: Sleep


class HttpProvider(MarketDataProvider):
    """A provider backed by a web service, serving a fixed symbol universe given at construction.

    `client` is for tests, as is `sleep` (so retries do not wait); `request_budget` caps the requests this
    provider sends, retries included.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        client: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        request_budget: int = DEFAULT_REQUEST_BUDGET,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._symbols = list(symbols)
        self.http = ProviderHttp(
            self.name,
            client=client,
            timeout=timeout,
            max_retries=max_retries,
            budget=RequestBudget(request_budget),
            sleep=sleep,
        )

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def close(self) -> None:
        self.http.close()

    def _metadata_frame(
        self, symbols: Sequence[str], lookup: Callable[[str], Mapping[str, object]]
    ) -> pd.DataFrame:
        """METADATA_COLUMNS from `lookup(symbol)`; a symbol it fails for keeps null columns and is logged."""
        rows: list[dict[str, object]] = []
        for symbol in symbols:
            try:
                known = lookup(symbol)
            except MarketDataError as error:
                logger.warning("%s: no metadata: %s", self.name, error)
                known = {}
            rows.append({**known, "symbol": symbol})
        frame = pd.DataFrame(rows, columns=METADATA_COLUMNS).astype({"market_cap": "float64"})
        frame["provider"] = self.name
        return frame
