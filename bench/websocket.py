"""bench/websocket: 1,000 idle websocket connections on one API worker: what they cost in memory, and how long
a recommendations refresh published on Redis takes to reach all of them.

Starts `stockyard serve --workers 1` on a scratch database (migrated, no market data: the websocket needs only
the accounts) and one user; opens CONNECTIONS websockets to /api/v1/ws, each signing in with an access token
of that user (every one checked by the server as in production: signature, expiry, the account), and waits
for each one's `ready`. Prints the worker's resident memory before and after, and the cost per connection.
Then publishes ROUNDS refresh messages the way the alert_hits asset does (stockyard.live.publish) and times,
from the publish to the last client's receipt, how long each takes to reach every connection.
Targets: the connections cost under 200 MB in all; a refresh reaches all of them within 1 s. The clients run
on the same machine, sharing its cores with the server.

    .venv/bin/python -m bench.websocket [--server-url postgresql://postgres@127.0.0.1:5432/postgres]
                                        [--redis-url redis://127.0.0.1:6379/0] [--connections 1000]
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date

import psutil
import psycopg
from websockets.asyncio.client import ClientConnection, connect

from bench._common import scratch_database
from bench.api import free_port, stop, wait_until_up
from serving.auth import User, issue_access_token
from serving.settings import ApiSettings
from stockyard.live import publish as publish_on_redis
from stockyard.live import refreshed_message

CONNECTIONS = 1000
ROUNDS = 5
OPENING_AT_ONCE = 100
CACHE_PREFIX = "stockyard-bench-ws"


def bench_user(database_url: str) -> User:
    """A user of the scratch database (its password hash is no hash: it cannot sign in, only hold tokens)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "insert into app.users (email, password_hash) values ('bench@example.com', '!')"
            " returning user_id, email, display_name, role, is_active, password_changed_at, created_at"
        ).fetchone()
    assert row is not None
    return User(*row)


async def open_connections(url: str, token: str, count: int) -> list[ClientConnection]:
    async def one() -> ClientConnection:
        websocket = await connect(url, max_queue=4, ping_interval=None, open_timeout=60)
        await websocket.send(json.dumps({"type": "auth", "token": token}))
        ready = json.loads(await websocket.recv())
        if ready.get("type") != "ready" or not ready.get("live"):
            raise SystemExit(f"a connection was not made ready: {ready}")
        return websocket

    opened: list[ClientConnection] = []
    for start in range(0, count, OPENING_AT_ONCE):
        opened += await asyncio.gather(*(one() for _ in range(min(OPENING_AT_ONCE, count - start))))
    return opened


async def time_refresh(connections: list[ClientConnection], redis_url: str, round_number: int) -> float:
    """Seconds from publishing a refresh to the last connection's receipt of it."""
    message = refreshed_message(date(2024, 1, 1 + round_number), model_version=f"bench-{round_number}")

    async def receipt(websocket: ClientConnection) -> float:
        received = json.loads(await websocket.recv())
        if received != message:
            raise SystemExit(f"unexpected message: {received}")
        return time.perf_counter()

    waiting = [asyncio.create_task(receipt(websocket)) for websocket in connections]
    await asyncio.sleep(0.2)  # every receiver waiting before the message goes
    sent = time.perf_counter()
    delivered = await asyncio.to_thread(
        publish_on_redis, redis_url, to_all=[message], cache_prefix=CACHE_PREFIX
    )
    if delivered != 1:
        raise SystemExit(f"the refresh reached {delivered} subscribers, not the one worker")
    return max(await asyncio.gather(*waiting)) - sent


async def measure(base_url: str, redis_url: str, token: str, count: int, worker: psutil.Process) -> None:
    ws_url = base_url.replace("http://", "ws://") + "/api/v1/ws"
    # One connection first: the route's code, the pools and Redis are warm before the baseline.
    (first,) = await open_connections(ws_url, token, 1)
    await asyncio.sleep(1)
    before = worker.memory_info().rss / 1024**2
    started = time.perf_counter()
    connections = [first, *await open_connections(ws_url, token, count - 1)]
    opening = time.perf_counter() - started
    await asyncio.sleep(2)
    after = worker.memory_info().rss / 1024**2
    print(f"connections: {len(connections)} open and signed in, in {opening:.1f} s")
    print(
        f"worker memory: {before:.1f} MB with 1 connection, {after:.1f} MB with {len(connections)}: "
        f"{after - before:.1f} MB for {len(connections) - 1} more "
        f"({(after - before) * 1024 / (len(connections) - 1):.1f} KB each); target < 200 MB"
    )
    rounds = [await time_refresh(connections, redis_url, number) for number in range(ROUNDS)]
    print(
        f"refresh to all {len(connections)}: median {statistics.median(rounds) * 1000:.0f} ms, "
        f"worst {max(rounds) * 1000:.0f} ms over {ROUNDS} rounds "
        f"({', '.join(f'{seconds * 1000:.0f}' for seconds in rounds)} ms); target < 1000 ms"
    )
    await asyncio.gather(*(websocket.close() for websocket in connections))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    args = parser.parse_args()

    database_url = scratch_database(args.server_url, "stockyard_bench_websocket")
    user = bench_user(database_url)
    port = free_port()
    env = {
        **os.environ,
        "STOCKYARD_SERVICES_DATABASE_URL": database_url,
        "STOCKYARD_SERVICES_REDIS_URL": args.redis_url,
        "STOCKYARD_API_CACHE_PREFIX": CACHE_PREFIX,
        # All the connections come from one address, faster than a client would open them.
        "STOCKYARD_API_RATE_LIMIT_PER_IP": f"{args.connections * 10}/minute",
        "STOCKYARD_API_LOG_LEVEL": "warning",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{base_url}/api/v1/health/live")
        # Signed as the server signs (the same settings from the same environment).
        token = issue_access_token(ApiSettings(database_url=database_url, redis_url=args.redis_url), user)
        asyncio.run(measure(base_url, args.redis_url, token, args.connections, psutil.Process(server.pid)))
    finally:
        stop(server)


if __name__ == "__main__":
    main()
