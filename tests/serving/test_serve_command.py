"""`stockyard serve` for real: uvicorn with two workers on a free port, JSON logs, metrics summed over the
workers, and a graceful stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from psycopg import sql

import tests.support as shared
from stockyard.api_role import API_ROLE
from tests.serving.support import SESSION_CACHE_PREFIX, BuiltMarts, copy_of
from tests.support import wait_until_ready


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def refused_head(port: int, *, header_bytes: int) -> bytes:
    """What the server answers a GET with one header of `header_bytes` (over the 32 KiB ceiling)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET /api/v1/health/live HTTP/1.1\r\nHost: api\r\nX-Big: " + b"a" * header_bytes)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        return answer


@pytest.fixture
def ungranted_warehouse(built_marts: BuiltMarts) -> Iterator[str]:
    """The marts, on which nobody granted the API's role anything."""
    with copy_of(built_marts.url) as url:
        yield url


def test_serve_answers_logs_json_and_stops_gracefully(
    ungranted_warehouse: str, built_marts: BuiltMarts, redis_url: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "STOCKYARD_SERVICES_DATABASE_URL": ungranted_warehouse,
        "STOCKYARD_SERVICES_REDIS_URL": redis_url,
        "STOCKYARD_API_CACHE_PREFIX": f"{SESSION_CACHE_PREFIX}:serve",
        # A proxy elsewhere: this test's requests come from 127.0.0.1, whose forwarding is not to be trusted.
        "STOCKYARD_API_FORWARDED_ALLOW_IPS": "10.0.0.1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{base}/api/v1/health/ready", server)
        symbol = built_marts.symbols[0]
        for _ in range(4):
            stock = httpx.get(
                f"{base}/api/v1/stocks/{symbol}",
                headers={"X-Request-ID": "serve-test", "X-Forwarded-For": "203.0.113.7"},
            )
            assert stock.status_code == 200 and stock.json()["stock"]["symbol"] == symbol
        metrics = httpx.get(f"{base}/metrics").text
        served = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("stockyard_api_requests_total") and 'route="/api/v1/stocks/{symbol}"' in line
        ]
        # Summed over both workers, whichever answered.
        assert sum(served) == 4
        # HEAD as uvicorn sends it: the GET's headers, no body.
        head = httpx.head(f"{base}/api/v1/stocks/{symbol}", headers={"X-Request-ID": "serve-head"})
        assert head.status_code == 200 and head.content == b""
        assert head.headers["Content-Length"] == stock.headers["Content-Length"]
        assert refused_head(port, header_bytes=64 * 1024).startswith(b"HTTP/1.1 431 ")
        assert httpx.get(f"{base}/api/v1/health/live").status_code == 200
        with psycopg.connect(ungranted_warehouse) as conn:
            users = conn.execute(
                "select distinct usename from pg_stat_activity"
                " where application_name = 'stockyard-api' and datname = current_database()"
            ).fetchall()
        # As the read-only role `stockyard serve` set up, not as the owner the services URL names.
        assert users == [(API_ROLE,)]
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    logs = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [
        entry
        for entry in logs
        if entry.get("logger") == "serving.access" and entry.get("request_id") == "serve-test"
    ]
    assert len(access) == 4 and all(entry["status"] == 200 for entry in access)
    # The address the requests came from: X-Forwarded-For counts from the proxies configured only.
    assert {entry["client"] for entry in access} == {"127.0.0.1"}
    assert [entry for entry in logs if entry["level"] in ("error", "critical")] == []
    assert any(
        "Shutting down" in entry["event"] or "Finished server process" in entry["event"] for entry in logs
    )


def test_serve_says_when_it_cannot_set_up_the_api_role(redis_url: str) -> None:
    # STOCKYARD_SERVICES_DATABASE_URL as a user who may create databases but not roles.
    user = f"stockyard_test_owner_{uuid.uuid4().hex[:8]}"
    server_url = shared.test_servers()[0]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create role {} login createdb").format(sql.Identifier(user)))
    try:
        with shared.throwaway_database() as url:
            env = {
                **os.environ,
                "STOCKYARD_SERVICES_DATABASE_URL": url.replace("//postgres@", f"//{user}@"),
                "STOCKYARD_SERVICES_REDIS_URL": redis_url,
            }
            result = subprocess.run(
                [sys.executable, "-m", "cli.main", "serve", "--port", str(free_port())],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(user)))
    assert result.returncode == 1, result.stderr
    assert "could not set up the API's read-only role 'stockyard_api'" in result.stderr
    assert "STOCKYARD_API_DATABASE_URL" in result.stderr
