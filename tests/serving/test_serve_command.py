"""`stockyard serve` for real: uvicorn with two workers on a free port, JSON logs, metrics summed over the
workers, and a graceful stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import httpx

from tests.conftest import wait_until_ready
from tests.serving.conftest import SESSION_CACHE_PREFIX, Warehouse


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


def test_serve_answers_logs_json_and_stops_gracefully(api_warehouse: Warehouse, redis_url: str) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": api_warehouse.url,
        "REDIS_URL": redis_url,
        "STOCKYARD_API_CACHE_PREFIX": f"{SESSION_CACHE_PREFIX}:serve",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "stockyard.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{base}/api/v1/health/ready", server)
        symbol = api_warehouse.symbols[0]
        for _ in range(4):
            stock = httpx.get(f"{base}/api/v1/stocks/{symbol}", headers={"X-Request-ID": "serve-test"})
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
    assert [entry for entry in logs if entry["level"] in ("error", "critical")] == []
    assert any(
        "Shutting down" in entry["event"] or "Finished server process" in entry["event"] for entry in logs
    )
